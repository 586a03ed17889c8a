import { Transform, type TransformCallback } from 'node:stream'
import { FST_NEXURE_BODY_TOO_LARGE } from '../errors.js'

/**
 * Counts the bytes that pass and fails the stream as soon as they exceed `limit`.
 *
 * Fastify enforces `bodyLimit` only on bodies it reads itself, so nexure counts twice: the
 * bytes received from the socket, and again after each decompression step, where a few KB of
 * gzip can turn into gigabytes (a zip bomb). The error is raised on the chunk that crosses the
 * limit, so nothing past it is decoded or parsed.
 */
export class ByteLimit extends Transform {
  bytes = 0
  readonly #limit: number
  readonly #what: string

  constructor (limit: number, what: string, highWaterMark: number) {
    super({ highWaterMark })
    this.#limit = limit
    this.#what = what
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length
    if (this.bytes > this.#limit) {
      callback(new FST_NEXURE_BODY_TOO_LARGE(`${this.#what} (${this.bytes} bytes so far)`, this.#limit))
      return
    }
    callback(null, chunk)
  }
}
