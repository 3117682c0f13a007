// Vault inventories as Glacier keeps them: taken periodically, so the latest one describes the
// vault as it was at its date (archives created by then, deleted ones still listed if deleted
// after it). This server's latest inventory is always `lagMs` old (0: taken just now), and an
// inventory-retrieval job returns the one that was latest when the job was initiated.

/** The date (ms) of the vault's latest inventory, or null before its first one. */
export function inventoryDate(v, lagMs, now = Date.now()) {
  const at = now - lagMs
  return at < v.created ? null : at
}

/** The archives the inventory of `date` lists: [{ id, description, created, size, treeHash }]. */
export function inventoryAt(v, date) {
  const listed = []
  for (const a of v.archives.values()) if (a.created <= date) listed.push(a)
  for (const a of v.gone) if (a.created <= date && a.deleted > date) listed.push(a)
  return listed.sort((a, b) => a.created - b.created)
}

const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')

/** RFC 4180 quoting: a field with a comma, a quote or a line break is quoted, quotes doubled. */
const csvField = (s) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s)

/** Glacier's CSV inventory: a header row, then one row per archive. */
export function inventoryCsv(list) {
  const rows = ['ArchiveId,ArchiveDescription,CreationDate,Size,SHA256TreeHash']
  for (const a of list) rows.push([a.id, csvField(a.description), iso(a.created), String(a.size), a.treeHash].join(','))
  return `${rows.join('\n')}\n`
}

/** Glacier's JSON inventory. */
export function inventoryJson(arn, date, list) {
  return JSON.stringify({
    VaultARN: arn,
    InventoryDate: iso(date),
    ArchiveList: list.map((a) => ({ ArchiveId: a.id, ArchiveDescription: a.description, CreationDate: iso(a.created), Size: a.size, SHA256TreeHash: a.treeHash })),
  })
}
