import { pipeline } from 'node:stream/promises'
import type { Readable, Transform } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Multipart, MultipartFile, MultipartValue } from '@fastify/multipart'
import {
  FST_NEXURE_ABORTED,
  FST_NEXURE_BODY_CONSUMED,
  FST_NEXURE_FIELD_TOO_LARGE,
  FST_NEXURE_FILE_TYPE_REFUSED,
  FST_NEXURE_UNSUPPORTED_MEDIA_TYPE
} from '../errors.js'
import { toUploadError } from './failure.js'
import { readHead } from './file-head.js'
import { sanitizeFilename } from './filename.js'
import type { ResolvedUploadOptions, SavedUploads, UploadFields, UploadedFile, UploadStats } from './options.js'
import { RequestStorage } from './request-storage.js'
import { kUploadState } from '../symbols.js'
import { UploadMeter, type RequestTotal } from './spill.js'
import type { StorageSink, UploadFileInfo } from './storage.js'

type Consumer = 'uploads()' | 'saveUploads()'
type Stage = 'source' | 'filter' | 'meter' | 'transform' | 'write'

/** One multipart request's upload state, created in onRequest, private on `request[kUploadState]`. */
export class UploadState {
  readonly options: ResolvedUploadOptions
  readonly storage: RequestStorage
  readonly fields: UploadFields = Object.create(null) as UploadFields
  readonly reply: FastifyReply
  readonly total: RequestTotal
  bytesReceived = 0
  filesStored = 0
  current: { readonly info: UploadFileInfo, meter: UploadMeter | null } | null = null
  consumer: Consumer | null = null
  saved: Promise<SavedUploads<object>> | null = null

  constructor (request: FastifyRequest, reply: FastifyReply, options: ResolvedUploadOptions) {
    this.options = options
    this.reply = reply
    this.total = { bytes: 0, limit: options.maxTotalSize }
    this.storage = new RequestStorage(options.storage, request, options.keepFiles)
  }

  readonly countBytes = (chunk: Buffer): void => {
    this.bytesReceived += chunk.length
  }

  /** A snapshot for `request.uploadStats`: read it as often as you like, it is always current. */
  stats (): UploadStats {
    const current = this.current
    return Object.freeze({
      bytesReceived: this.bytesReceived,
      files: this.filesStored,
      currentFile: current === null
        ? null
        : Object.freeze({ fieldname: current.info.fieldname, filename: current.info.filename, index: current.info.index, bytes: current.meter?.bytes ?? 0 })
    })
  }
}

/**
 * Checks that this request can still give its body to `method`, and claims it. Throws (at the
 * call, not at the first `next()`) so misuse surfaces where it happens.
 */
export function claimBody (request: FastifyRequest, state: UploadState | null, method: Consumer): UploadState {
  if (state === null || !request.isMultipart()) {
    const got = request.headers['content-type'] ?? 'none'
    throw new FST_NEXURE_UNSUPPORTED_MEDIA_TYPE(got, 'multipart/form-data (a form upload, e.g. curl -F)')
  }
  if (state.consumer !== null) throw new FST_NEXURE_BODY_CONSUMED(method, state.consumer)
  const raw = request.raw
  // Something else (attachFieldsToBody, request.parts(), a stream plugin) already reads it.
  if (raw.readableEnded || raw.readableFlowing !== null) throw new FST_NEXURE_BODY_CONSUMED(method, 'another reader')
  if (state.storage.disposed || (raw.destroyed && !raw.complete)) {
    throw new FST_NEXURE_ABORTED(`the connection closed before ${method} was called`)
  }
  state.consumer = method
  return state
}

function busboyLimits (options: ResolvedUploadOptions): Record<string, number> {
  // fileSize stays unlimited in busboy: it would truncate silently; UploadMeter fails instead.
  // parts is bounded by files + fields already.
  return { fileSize: Infinity, files: options.maxFiles, fields: options.maxFields, fieldSize: options.maxFieldSize, parts: Infinity }
}

/** Yields each file once it is completely stored (on disk: written and its descriptor closed). */
export async function * iterateUploads (request: FastifyRequest, state: UploadState): AsyncGenerator<UploadedFile<object>, void, undefined> {
  const raw = request.raw
  const parts = request.parts({ limits: busboyLimits(state.options) })
  // The first next() runs @fastify/multipart's setup synchronously, which pipes the request
  // into busboy; only then may a 'data' listener be added without stealing bytes from it.
  let next = parts.next()
  raw.on('data', state.countBytes)
  let fileIndex = 0
  let file: string | null = null
  let stage: Stage | null = null
  let done = false
  try {
    for (;;) {
      const result = await next
      if (result.done === true) {
        done = true
        return
      }
      const part: Multipart = result.value
      if (part.type === 'field') {
        addField(state.fields, part, state.options)
      } else {
        fileIndex++
        const info: UploadFileInfo = Object.freeze({
          fieldname: part.fieldname,
          filename: sanitizeFilename(part.filename),
          mimetype: part.mimetype,
          encoding: part.encoding,
          index: fileIndex
        })
        file = `file ${fileIndex} "${info.filename}"`
        state.current = { info, meter: null }
        const { uploaded, handOver } = await storeFile(request, state, part, info, s => { stage ??= s })
        state.current = null
        state.filesStored++
        file = null
        stage = null
        handOver()
        yield uploaded
      }
      next = parts.next()
    }
  } catch (err) {
    stopReading(raw)
    const error = toUploadError(err, {
      options: state.options,
      file,
      stage: stage === 'filter' || stage === 'transform' || stage === 'write' ? stage : null,
      bytesReceived: state.bytesReceived,
      aborted: raw.destroyed && !raw.complete
    })
    done = true
    state.current = null
    // All or nothing: the files this request already stored go too, before the error is answered.
    await state.storage.dispose(`upload failed: ${(error as { code?: string }).code ?? error.message}`, true)
    throw error
  } finally {
    if (!done) await parts.return?.(undefined)
    stopReading(raw)
  }
}

// Left flowing after a failure or an early exit, the request would be read to its end into
// nowhere, however large. Paused here; onSend then drains a small rest or closes the connection.
function stopReading (raw: FastifyRequest['raw']): void {
  if (raw.readableEnded) return
  raw.unpipe()
  raw.pause()
}

/** Consumes every part; the files are stored, the fields in `fields`. */
export async function saveAll (request: FastifyRequest, state: UploadState): Promise<SavedUploads<object>> {
  const files: Array<UploadedFile<object>> = []
  for await (const file of iterateUploads(request, state)) files.push(file)
  return { files, fields: state.fields }
}

function addField (fields: UploadFields, part: MultipartValue, options: ResolvedUploadOptions): void {
  if (part.valueTruncated) throw new FST_NEXURE_FIELD_TOO_LARGE(part.fieldname, options.maxFieldSize)
  // @fastify/multipart parses fields declared application/json; keep every field a string.
  const value = typeof part.value === 'string' ? part.value : JSON.stringify(part.value)
  const existing = fields[part.fieldname]
  if (existing === undefined) fields[part.fieldname] = value
  else if (Array.isArray(existing)) existing.push(value)
  else fields[part.fieldname] = [existing, value]
}

async function storeFile (
  request: FastifyRequest,
  state: UploadState,
  part: MultipartFile,
  info: UploadFileInfo,
  failedAt: (stage: Stage) => void
): Promise<{ uploaded: UploadedFile<object>, handOver: () => void }> {
  const { options, storage } = state
  part.file.once('error', () => failedAt('source'))
  let source: Readable = part.file
  let sink: StorageSink | null = null
  // FST_NEXURE_FILE_TOO_LARGE quotes the client's name, or the file's position without one.
  const meter = new UploadMeter(options.maxFileSize, state.total, options.hash, {
    name: info.filename === '' ? `file ${info.index}` : info.filename,
    position: `file ${info.index} "${info.filename}"`
  })
  const transforms: Transform[] = []
  try {
    if (options.fileFilter !== null) source = await filterFile(request, options, part, info, failedAt)
    try {
      sink = await storage.open(info)
    } catch (err) {
      failedAt('write')
      throw err
    }
    if (state.current !== null) state.current.meter = meter
    // The first stage that fails emits 'error' first; pipeline then destroys the others with
    // the same error, so only the first report counts.
    meter.once('error', () => failedAt('meter'))
    for (const factory of options.transforms) {
      const transform = factory(request, state.reply)
      transform.once('error', () => failedAt('transform'))
      transforms.push(transform)
    }
    sink.writable.once('error', () => failedAt('write'))
    await pipeline(source, meter, ...transforms, sink.writable)
  } catch (err) {
    stopReading(request.raw)
    if (sink !== null && transforms.length < options.transforms.length) failedAt('transform')
    for (const stream of [part.file, source, meter, ...transforms]) stream.destroy()
    // Undone now, not at the end of the request: a file over a limit must not linger.
    if (sink !== null) await storage.abort(sink, err as Error)
    throw err
  }
  try {
    const { stored, handOver } = await storage.commit(sink)
    const uploaded = { ...stored, fieldname: info.fieldname, filename: info.filename, mimetype: info.mimetype, encoding: info.encoding, size: meter.bytes, hash: meter.digest() }
    return { uploaded, handOver }
  } catch (err) {
    failedAt('write')
    throw err
  }
}

/** Reads the file's first bytes for `fileFilter`; returns the whole file (head included) to store. */
async function filterFile (
  request: FastifyRequest,
  options: ResolvedUploadOptions,
  part: MultipartFile,
  info: UploadFileInfo,
  failedAt: (stage: Stage) => void
): Promise<Readable> {
  const { head, file } = await readHead(part.file)
  let accepted: boolean
  try {
    accepted = await options.fileFilter!(info, head, request)
  } catch (err) {
    file.destroy()
    failedAt('filter')
    throw err
  }
  if (accepted !== true) {
    file.destroy()
    throw new FST_NEXURE_FILE_TYPE_REFUSED(`${info.index} "${info.filename}" (field "${info.fieldname}", declared ${info.mimetype})`, describeHead(head))
  }
  return file
}

function describeHead (head: Buffer): string {
  if (head.length === 0) return 'it is empty'
  const shown = head.subarray(0, 8).toString('hex').replace(/(..)(?!$)/g, '$1 ')
  return `its first bytes are ${shown}${head.length > 8 ? ' …' : ''}`
}

// The request API: `request.uploads()`, `saveUploads()`, `uploadFields`, `uploadStats`.

const NO_FIELDS: UploadFields = Object.freeze(Object.create(null) as UploadFields)
const NO_STATS: UploadStats = Object.freeze({ bytesReceived: 0, files: 0, currentFile: null })

export function uploads (this: FastifyRequest): AsyncIterableIterator<UploadedFile<any>> {
  const state = claimBody(this, this[kUploadState] ?? null, 'uploads()')
  return iterateUploads(this, state) as AsyncIterableIterator<UploadedFile<any>>
}

export function saveUploads (this: FastifyRequest): Promise<SavedUploads<any>> {
  const state = this[kUploadState] ?? null
  if (state?.saved != null) return state.saved
  try {
    const claimed = claimBody(this, state, 'saveUploads()')
    claimed.saved = saveAll(this, claimed)
    return claimed.saved as Promise<SavedUploads<any>>
  } catch (err) {
    return Promise.reject(err)
  }
}

export const uploadFields = {
  getter (this: FastifyRequest): UploadFields {
    return this[kUploadState]?.fields ?? NO_FIELDS
  }
}

export const uploadStats = {
  getter (this: FastifyRequest): UploadStats {
    return this[kUploadState]?.stats() ?? NO_STATS
  }
}
