import { Readable } from 'node:stream'

/** Bytes of a file's start given to `fileFilter`: enough for every common magic number. */
export const FILE_HEAD_BYTES = 4096

/**
 * Reads up to `size` bytes from the start of `source` (fewer if the file is shorter) without
 * losing them: returns them, and a stream of the whole file, head included, that pulls the rest
 * from `source` as it is read (backpressure holds). Destroying that stream destroys `source`.
 */
export async function readHead (source: Readable, size = FILE_HEAD_BYTES): Promise<{ head: Buffer, file: Readable }> {
  const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  const chunks: Buffer[] = []
  let length = 0
  let ended = false
  while (length < size) {
    const next = await iterator.next()
    if (next.done === true) {
      ended = true
      break
    }
    chunks.push(next.value)
    length += next.value.length
  }
  async function * whole (): AsyncGenerator<Buffer> {
    let finished = ended
    try {
      yield * chunks
      while (!finished) {
        const next = await iterator.next()
        if (next.done === true) finished = true
        else yield next.value
      }
    } finally {
      if (!finished) await iterator.return?.()
    }
  }
  const head = Buffer.concat(chunks, length)
  return { head: head.subarray(0, Math.min(size, head.length)), file: Readable.from(whole(), { objectMode: false }) }
}
