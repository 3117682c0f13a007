import t from 'tap'
import { Progress } from '../../src/cli/progress.js'

function sink(isTTY: boolean): { isTTY: boolean; out: string[]; write(s: string): void } {
  return { isTTY, out: [], write(s: string) { this.out.push(s) } }
}

t.test('on a terminal the bar is redrawn in place and its line ended once', async (t) => {
  const s = sink(true)
  const bar = new Progress('recalling 3 files:', s)
  bar.update(0, 4, 'packs warm')
  bar.update(0, 4, 'packs warm')
  bar.update(2, 4, 'packs warm')
  bar.update(4, 4, 'packs warm')
  bar.end()
  t.same(s.out, [
    `\rrecalling 3 files: [${'-'.repeat(30)}] 0/4 packs warm\x1b[K`,
    `\rrecalling 3 files: [${'#'.repeat(15)}${'-'.repeat(15)}] 2/4 packs warm\x1b[K`,
    `\rrecalling 3 files: [${'#'.repeat(30)}] 4/4 packs warm\x1b[K`,
    '\n',
  ], 'an unchanged figure is not redrawn')
})

t.test('in a log or a pipe each change is a line of its own', async (t) => {
  const s = sink(false)
  const bar = new Progress('recall', s)
  bar.update(1, 3)
  bar.update(1, 3)
  bar.update(3, 3)
  bar.end()
  t.same(s.out, [`recall [${'#'.repeat(10)}${'-'.repeat(20)}] 1/3\n`, `recall [${'#'.repeat(30)}] 3/3\n`])
  const empty = sink(false)
  new Progress('x', empty).update(0, 0)
  t.same(empty.out, [`x [${'#'.repeat(30)}] 0/0\n`], 'nothing to wait for is a full bar')
})
