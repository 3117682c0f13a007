import t from 'tap'
import { csvRows } from '../../src/tier/csv-rows.js'
import { TierfsError } from '../../src/errors.js'

async function rows(chunks: Array<string | Uint8Array>, max?: number): Promise<string[][]> {
  const out: string[][] = []
  async function* feed(): AsyncIterable<string | Uint8Array> { yield* chunks }
  for await (const r of csvRows(feed(), max)) out.push(r)
  return out
}

const text = 'ArchiveId,ArchiveDescription,Size\r\nid1,"tierfs:packs/a.pack",10\nid2,"other, with ""quotes""",20\n\nid3,,30\nid4,"two\nlines",40'
const want = [
  ['ArchiveId', 'ArchiveDescription', 'Size'],
  ['id1', 'tierfs:packs/a.pack', '10'],
  ['id2', 'other, with "quotes"', '20'],
  ['id3', '', '30'],
  ['id4', 'two\nlines', '40'],
]

t.test('quoted fields, doubled quotes, commas and line breaks inside quotes, CRLF, empty lines, no final break', async (t) => {
  t.same(await rows([text]), want)
})

t.test('the same rows whatever the chunk boundaries (bytes split inside quotes, CRLF and UTF-8 sequences)', async (t) => {
  const bytes = Buffer.from(`${text}\nid5,"caf\u00e9 \u2603",50\n`)
  const whole = [...want, ['id5', 'caf\u00e9 \u2603', '50']]
  for (const size of [1, 2, 3, 7, 64]) {
    const chunks: Uint8Array[] = []
    for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size))
    t.same(await rows(chunks), whole, `chunks of ${size} bytes`)
  }
})

t.test('a lone CR is a character; a row over the limit and an unterminated quote are CORRUPT', async (t) => {
  t.same(await rows(['a\rb,c\n']), [['a\rb', 'c']])
  const long = await rows(['x'.repeat(100), '\n'], 50).then(() => undefined, (e: unknown) => e)
  t.ok(long instanceof TierfsError && long.code === 'CORRUPT')
  const open = await rows(['a,"b\n']).then(() => undefined, (e: unknown) => e)
  t.ok(open instanceof TierfsError && open.code === 'CORRUPT')
})
