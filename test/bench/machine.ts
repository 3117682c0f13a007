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
    load: loadavg().map((x) => Math.round(x * 100) / 100),
  }
}

export function machineText(m: Machine): string {
  return [
    `- machine: ${m.nproc} CPUs (${m.cpu}), ${m.memoryGiB} GiB RAM, kernel ${m.kernel}`,
    `- disk: ${m.disk}`,
    `- node ${m.node}, libfuse ${m.libfuse}, ${m.fio}`,
    `- load average at start: ${m.load.join(' / ')} (the machine is shared; other engineers' tests add noise)`,
  ].join('\n')
}
