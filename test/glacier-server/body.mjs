// Request bodies: streamed to a file while hashed (leaf hashes, plain SHA-256), never buffered
// whole; small JSON bodies read with a cap.
import { createWriteStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { LeafHasher } from './tree-hash.mjs'
import { invalid, missing } from './glacier-error.mjs'

/** Streams the body to `file`; returns { leaves, size, sha256, treeHash } of what arrived. */
export async function receiveToFile(req, file) {
  if (req.headers['content-length'] === undefined) throw missing('Content-Length is required')
  const hasher = new LeafHasher()
  await pipeline(req, async function* (src) {
    for await (const chunk of src) {
      hasher.update(chunk)
      yield chunk
    }
  }, createWriteStream(file))
  return hasher.finish()
}

/** Reads a small body (JSON requests); returns { text, sha256 }. */
export async function receiveSmall(req, limit = 64 * 1024) {
  const hasher = new LeafHasher()
  const parts = []
  for await (const chunk of req) {
    hasher.update(chunk)
    parts.push(chunk)
    if (hasher.size > limit) throw invalid(`request body larger than ${limit} bytes`)
  }
  const { sha256 } = hasher.finish()
  return { text: Buffer.concat(parts).toString('utf8'), sha256 }
}

/** The x-amz-content-sha256 check AWS makes: the header must be the SHA-256 of the body. */
export function checkContentSha256(req, actualHex, required) {
  const declared = req.headers['x-amz-content-sha256']
  if (declared === undefined) {
    if (required) throw missing('Missing required header x-amz-content-sha256')
    return
  }
  if (declared !== actualHex) {
    throw invalid(`The value passed in as x-amz-content-sha256 (${declared}) does not match the computed payload hash (${actualHex})`)
  }
}

/** The x-amz-sha256-tree-hash check: present and equal to the tree hash of the body. */
export function checkTreeHash(req, actualHex) {
  const declared = req.headers['x-amz-sha256-tree-hash']
  if (declared === undefined) throw missing('Missing required header x-amz-sha256-tree-hash')
  if (declared !== actualHex) throw invalid(`Checksum mismatch: x-amz-sha256-tree-hash is ${declared}, the tree hash of the payload is ${actualHex}`)
}
