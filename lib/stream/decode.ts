import zlib from 'node:zlib'
import type { Transform } from 'node:stream'
import { FST_NEXURE_UNSUPPORTED_ENCODING } from '../errors.js'

export type ContentCoding = 'gzip' | 'deflate' | 'br'

const CODINGS: Record<string, ContentCoding | null> = {
  gzip: 'gzip',
  'x-gzip': 'gzip',
  deflate: 'deflate',
  br: 'br',
  identity: null
}

/**
 * Reads `Content-Encoding` into the decoders to apply, in decoding order (the header lists
 * codings in the order they were applied, so they are undone last to first).
 * Throws FST_NEXURE_UNSUPPORTED_ENCODING (415) for a coding nexure cannot decode.
 */
export function parseContentEncoding (header: string | string[] | undefined): ContentCoding[] {
  if (header === undefined) return []
  const value = Array.isArray(header) ? header.join(',') : header
  const codings: ContentCoding[] = []
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase()
    if (name === '') continue
    const coding = CODINGS[name]
    if (coding === undefined) throw new FST_NEXURE_UNSUPPORTED_ENCODING(name)
    if (coding !== null) codings.push(coding)
  }
  return codings.reverse()
}

export function createDecoder (coding: ContentCoding, chunkSize: number): Transform {
  switch (coding) {
    case 'gzip': return zlib.createGunzip({ chunkSize })
    // HTTP's "deflate" is the zlib format (RFC 9110 8.4.1.2), not raw deflate.
    case 'deflate': return zlib.createInflate({ chunkSize })
    case 'br': return zlib.createBrotliDecompress({ chunkSize })
  }
}
