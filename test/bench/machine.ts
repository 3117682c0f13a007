import { readFile } from 'node:fs/promises'
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os'
import { run } from '../support/tierfs-mount.js'

export interface Machine {
  nproc: number
  cpu: string
  memoryGiB: number
  /** Device, filesystem and mount options of the disk under `dir`, and the device's model. */
  disk: string
  kernel: string
  node: string
  libfuse: string
  fio: string
  /** 1/5/15-minute load averages when the run started (other users of the machine). */
  load: number[]
  /** Share of the last 60 s some task waited for a CPU (PSI), when the run started. */
  cpuPressure: string
}

/** Load and CPU pressure now: how busy the (shared) machine is. */
export async function busyness(): Promise<{ load: number[]; cpuPressure: string }> {
  const psi = await readFile('/proc/pressure/cpu', 'utf8').catch(() => '')
  const avg60 = /^some .*avg60=([\d.]+)/m.exec(psi)?.[1]
  return { load: loadavg().map((x) => Math.round(x * 100) / 100), cpuPressure: avg60 === undefined ? 'unknown' : `${avg60}%` }
}

export async function describeMachine(dir: string): Promise<Machine> {
  const out = async (cmd: string, args: string[]): Promise<string> => (await run(cmd, args)).stdout.trim()
  const mount = await out('findmnt', ['-n', '-o', 'SOURCE,FSTYPE,OPTIONS', '--target', dir])
  const dev = mount.split(/\s+/)[0] ?? ''
  const blk = dev.startsWith('/dev/') ? await out('lsblk', ['-ndo', 'SIZE,ROTA,MODEL', dev]) : ''
  const [size, rota, ...model] = blk.split(/\s+/)
  return {
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    disk: `${mount.split(/\s+/).slice(0, 2).join(' ')}${size ? `, ${size}` : ''}${rota === '0' ? ', non-rotational' : rota === '1' ? ', reported rotational' : ''}${model.length > 0 ? `, ${model.join(' ')}` : ''}`,
    kernel: release(),
    node: process.version,
    libfuse: (await out('dpkg-query', ['-W', '-f=${Version}', 'libfuse2'])) || 'unknown',
    fio: (await out('fio', ['--version'])) || 'not installed',
    ...(await busyness()),
  }
}

export function machineText(m: Machine): string {
  return [
    `- machine: ${m.nproc} CPUs (${m.cpu}), ${m.memoryGiB} GiB RAM, kernel ${m.kernel}`,
    `- disk: ${m.disk}`,
    `- node ${m.node}, libfuse ${m.libfuse}, ${m.fio}`,
    `- at start: load average ${m.load.join(' / ')}, CPU pressure ${m.cpuPressure} (some-avg60; the machine is shared and other engineers' tests add noise)`,
  ].join('\n')
}
