import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'

// A multipart/form-data body with one file of exactly `size` bytes, generated while it is
// sent. The file's bytes repeat one random 64 KiB block: incompressible enough, and nothing is
// held but that block.

const BLOCK = randomBytes(64 * 1024)

export interface MultipartBody {
  contentType: string
  contentLength: number
  body: Readable
}

/** `onFileBytes` is called with the file bytes generated so far, after each chunk. */
export function multipartFileBody (size: number, onFileBytes?: (sent: number) => void): MultipartBody {
  const filename = 'upload.bin'
  const boundary = `----nexure-bench-${randomBytes(12).toString('hex')}`
  const head = Buffer.from(`--${boundary}\r\n` +
    `Content-Disposition: form-data; name="file"; filename="${filename}"\r\n` +
    'Content-Type: application/octet-stream\r\n\r\n')
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
  let sent = 0
  let stage: 'head' | 'file' | 'tail' | 'done' = 'head'
  const body = new Readable({
    highWaterMark: BLOCK.length,
    read () {
      if (stage === 'head') {
        stage = 'file'
        this.push(head)
      } else if (stage === 'file') {
        const length = Math.min(BLOCK.length, size - sent)
        if (length > 0) {
          // A fresh view each time: the block itself is never handed out to be modified.
          this.push(Buffer.from(BLOCK.subarray(0, length)))
          sent += length
          onFileBytes?.(sent)
        }
        if (sent === size) stage = 'tail'
      } else if (stage === 'tail') {
        stage = 'done'
        this.push(tail)
        this.push(null)
      }
    }
  })
  return { contentType: `multipart/form-data; boundary=${boundary}`, contentLength: head.length + size + tail.length, body }
}
