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

/**
 * Decodes a whole small body in one call on libuv's thread pool, as long as the output stays
 * within `maxOutputLength` bytes: resolves null as soon as it would not (a zip bomb is never
 * inflated past it), so that the caller can stream the body instead. A decoder fault rejects
 * with zlib's own error, the one the streaming decoder raises for the same bytes.
 */
export function decodeWhole (coding: ContentCoding, body: Buffer, maxOutputLength: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const settle = (error: Error | null, decoded: Buffer): void => {
      if (error === null) resolve(decoded)
      else if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') resolve(null)
      else reject(error)
    }
    switch (coding) {
      case 'gzip': zlib.gunzip(body, { maxOutputLength }, settle); break
      case 'deflate': zlib.inflate(body, { maxOutputLength }, settle); break
      case 'br': zlib.brotliDecompress(body, { maxOutputLength }, settle); break
    }
  })
}

/**
 * The largest output `decodeWholeNow` is asked to bound: what a default small body may inflate
 * to (streamThreshold, 1 MiB, plus the byte that tells it went past).
 */
export const DECODE_NOW_UP_TO = 1024 * 1024 + 1

/**
 * `decodeWhole` on this thread, for gzip and deflate outputs bounded by `DECODE_NOW_UP_TO`: a
 * 1 KB gzip body costs ~10 us of CPU so, against ~29 us through the thread pool or a streaming
 * gunzip (10 in flight, median of 7), because the hop there and back costs more than the
 * inflate. The bound keeps the block short: the worst, a zip bomb stopped at 1 MiB of output,
 * takes 1.3-2 ms (gzip), 0.3-0.5 ms (deflate). Not brotli: 102 bytes of it stopped at the same
 * 1 MiB took 8-10 ms, so br bodies stay on the thread pool.
 */
export function decodeWholeNow (coding: 'gzip' | 'deflate', body: Buffer, maxOutputLength: number): Buffer | null {
  try {
    return coding === 'gzip' ? zlib.gunzipSync(body, { maxOutputLength }) : zlib.inflateSync(body, { maxOutputLength })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return null
    throw error
  }
}
