import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { combineTreeHashes, MiB, TreeHash, treeHash, treeHashFileRange } from '../../src/tier/tree-hash.js'

const sha = (...b: Buffer[]): Buffer => { const h = createHash('sha256'); for (const x of b) h.update(x); return h.digest() }

/**
 * Independent reference: the tree hash as a recursive split, the left subtree taking the
 * largest power of two of leaves below n (the shape Glacier's level-by-level pairing builds).
 */
function naive(data: Buffer): Buffer {
  const leaves: Buffer[] = []
  for (let i = 0; i < data.length; i += MiB) leaves.push(sha(data.subarray(i, i + MiB)))
  if (leaves.length === 0) return sha(Buffer.alloc(0))
  const root = (l: Buffer[]): Buffer => {
    if (l.length === 1) return l[0] as Buffer
    let k = 1
    while (k * 2 < l.length) k *= 2
    return sha(root(l.slice(0, k)), root(l.slice(k)))
  }
  return root(leaves)
}

const pattern = (n: number): Buffer => { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = i % 251; return b }

t.test('fixed vectors (computed outside this code base)', async (t) => {
  const vectors: Array<[number, string]> = [
    [1, '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d'],
    [MiB, '631b84027d6b9e52b539c4e8373622d23032dfadc64d60af87339c9037e4f769'],
    [3 * MiB + 5, 'c9e0c11a00161b193e0a1b3692ec553d4033a887f2086a7cadd4cd722d87f09f'],
    [7 * MiB, '8bfce57c6a4076b3e930e725fbaa00beeffff0f0d9a6491a89a53baa73b4810d'],
  ]
  for (const [n, hex] of vectors) t.equal(treeHash(pattern(n)).toString('hex'), hex, `${n} bytes`)
  t.equal(treeHash(Buffer.alloc(0)).toString('hex'), sha(Buffer.alloc(0)).toString('hex'), 'no data: SHA-256 of nothing')
})

t.test('streaming in arbitrary pieces matches the recursive reference', async (t) => {
  for (const n of [1, 1000, MiB - 1, MiB, MiB + 1, 2 * MiB, 3 * MiB + 17, 4 * MiB, 5 * MiB + 3, 6 * MiB, 7 * MiB - 1, 9 * MiB + 1]) {
    const data = randomBytes(n)
    const h = new TreeHash()
    for (let at = 0; at < n;) {
      const step = 1 + Math.floor(Math.random() * 700_000)
      h.update(data.subarray(at, at + step))
      at += step
    }
    t.equal(h.size, n)
    t.equal(h.digest().toString('hex'), naive(data).toString('hex'), `${n} bytes`)
  }
})

t.test('part hashes combine into the archive hash for power-of-two MiB parts', async (t) => {
  const data = randomBytes(11 * MiB + 123)
  for (const part of [MiB, 2 * MiB, 4 * MiB, 16 * MiB]) {
    const hashes: Buffer[] = []
    for (let at = 0; at < data.length; at += part) hashes.push(treeHash(data.subarray(at, at + part)))
    t.equal(combineTreeHashes(hashes).toString('hex'), naive(data).toString('hex'), `parts of ${part / MiB} MiB`)
  }
})

t.test('file ranges hash like the same bytes in memory', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tierfs-th-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const data = randomBytes(3 * MiB + 99)
  await writeFile(join(dir, 'f'), data)
  const r = await treeHashFileRange(join(dir, 'f'), MiB, 3 * MiB + 98)
  t.equal(r.size, 2 * MiB + 99)
  t.equal(r.treeHash.toString('hex'), naive(data.subarray(MiB)).toString('hex'))
})
