// Builds multipart/form-data bodies for tests, streamed: file contents can be generated on the
// fly (never held in memory), so the same helper serves a 10-byte form and a 1 GB upload.
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import net from 'node:net'

export interface FieldPart {
  name: string
  value: string
  /** Content-Type of the part; a plain field has none. */
  contentType?: string
}

export interface FilePart {
  name: string
  /** Written into the part header as is (quotes and CR/LF are the caller's business). */
  filename: string
  contentType?: string
  /** The bytes, or a generated payload of `size` bytes (see `patternChunks`). */
  content: Buffer | string | GeneratedContent
}

export interface GeneratedContent {
  size: number
  /** Size of the chunks the payload is produced in. @default 65536 */
  chunkSize?: number
  /** Seed for the byte pattern, so two payloads differ. @default 0 */
  seed?: number
}

export type Part = FieldPart | FilePart

const CRLF = '\r\n'

function isFile (part: Part): part is FilePart {
  return 'filename' in part
}

/** Deterministic bytes: the same size and seed always give the same bytes, chunk by chunk. */
export function * patternChunks ({ size, chunkSize = 65536, seed = 0 }: GeneratedContent): Generator<Buffer> {
  const template = Buffer.alloc(chunkSize + 256)
  for (let i = 0; i < template.length; i++) template[i] = (i * 31 + seed * 7) & 0xff
  let sent = 0
  while (sent < size) {
    const length = Math.min(chunkSize, size - sent)
    const offset = sent % 256
    // A fresh copy: a consumer may keep the chunk (undici queues it) while we produce the next.
    yield Buffer.from(template.subarray(offset, offset + length))
    sent += length
  }
}

/** Hex digest of a part's content, computed the same way as the server should. */
export function contentHash (content: FilePart['content'], algorithm = 'sha256'): string {
  const hash = createHash(algorithm)
  if (typeof content === 'string' || Buffer.isBuffer(content)) hash.update(content)
  else for (const chunk of patternChunks(content)) hash.update(chunk)
  return hash.digest('hex')
}

function contentLength (content: FilePart['content']): number {
  if (typeof content === 'string') return Buffer.byteLength(content)
  if (Buffer.isBuffer(content)) return content.length
  return content.size
}

function partHeader (boundary: string, part: Part): Buffer {
  let head = `--${boundary}${CRLF}Content-Disposition: form-data; name="${part.name}"`
  if (isFile(part)) head += `; filename="${part.filename}"`
  head += CRLF
  const type = part.contentType ?? (isFile(part) ? 'application/octet-stream' : undefined)
  if (type !== undefined) head += `Content-Type: ${type}${CRLF}`
  return Buffer.from(head + CRLF, 'latin1')
}

export interface MultipartBody {
  boundary: string
  /** The request's Content-Type header value. */
  contentType: string
  /** Total bytes; the Content-Length header value. */
  length: number
  /** The body, chunk by chunk; call again for a fresh pass. */
  chunks: () => Generator<Buffer>
  /** The whole body in one buffer (small bodies only). */
  toBuffer: () => Buffer
}

export function multipartBody (parts: Part[], boundary = `nexure-test-${randomBytes(8).toString('hex')}`): MultipartBody {
  const closing = Buffer.from(`--${boundary}--${CRLF}`)
  let length = closing.length
  for (const part of parts) {
    length += partHeader(boundary, part).length + CRLF.length
    length += isFile(part) ? contentLength(part.content) : Buffer.byteLength(part.value)
  }
  function * chunks (): Generator<Buffer> {
    for (const part of parts) {
      yield partHeader(boundary, part)
      if (!isFile(part)) yield Buffer.from(part.value)
      else if (typeof part.content === 'string') yield Buffer.from(part.content)
      else if (Buffer.isBuffer(part.content)) yield part.content
      else yield * patternChunks(part.content)
      yield Buffer.from(CRLF)
    }
    yield closing
  }
  return {
    boundary,
    contentType: `multipart/form-data; boundary=${boundary}`,
    length,
    chunks,
    toBuffer: () => Buffer.concat([...chunks()])
  }
}

/** Open file descriptors of this process (Linux). */
export async function openFds (): Promise<number> {
  return (await readdir('/proc/self/fd')).length
}

/**
 * Waits (bounded) until `check` holds: cleanup after an abort is asynchronous and the server
 * cannot tell the client when it is done. Returns whether it held in time.
 */
export async function eventually (check: () => Promise<boolean>, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    // A check may fail while the server is mid-cleanup (a directory vanishing during readdir).
    if (await check().catch(() => false)) return true
    if (Date.now() > deadline) return false
    await sleep(20)
  }
}

/** Everything under `dir`, recursively, as relative paths. */
export async function listTree (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true })
  return entries.map(String).sort()
}

/** Anything with tap's `teardown`; keeps these helpers independent of tap's generic types. */
export interface HasTeardown {
  teardown: (fn: () => unknown) => void
}

/** A fresh directory under os.tmpdir(), removed when the test ends. */
export async function testTempDir (t: HasTeardown, prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Writes the head and `cut` bytes of the body, waits `pauseMs`, then destroys the socket: a client that goes away mid-upload. */
export function abortedUpload (port: number, head: string, body: Buffer, cut: number, pauseMs: number): Promise<void> {
  return new Promise(resolve => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(head)
      socket.write(body.subarray(0, cut), () => setTimeout(() => socket.destroy(), pauseMs))
    })
    socket.on('error', () => {})
    socket.on('close', () => resolve())
  })
}
