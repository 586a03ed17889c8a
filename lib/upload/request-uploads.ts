import { rm } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import type { Transform } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Multipart, MultipartFile, MultipartValue } from '@fastify/multipart'
import { FST_NEXURE_ABORTED, FST_NEXURE_BODY_CONSUMED, FST_NEXURE_FIELD_TOO_LARGE, FST_NEXURE_UNSUPPORTED_MEDIA_TYPE } from '../errors.js'
import { toUploadError } from './failure.js'
import { sanitiseFilename, storedFileName } from './filename.js'
import type { ResolvedUploadOptions, SavedUploads, UploadFields, UploadedFile } from './options.js'
import { UploadMeter } from './spill.js'
import { RequestUploadDir } from './temp-dir.js'

type Consumer = 'uploads()' | 'saveUploads()'
type Stage = 'source' | 'meter' | 'transform' | 'write'

/** One multipart request's upload state, created in onRequest, private on `request[kUploadState]`. */
export class UploadState {
  readonly options: ResolvedUploadOptions
  readonly dir: RequestUploadDir
  readonly fields: UploadFields = Object.create(null) as UploadFields
  readonly reply: FastifyReply
  bytesReceived = 0
  consumer: Consumer | null = null
  saved: Promise<SavedUploads> | null = null

  constructor (request: FastifyRequest, reply: FastifyReply, options: ResolvedUploadOptions) {
    this.options = options
    this.reply = reply
    this.dir = new RequestUploadDir(options.tempDir, options.keepFiles, options.pool, request.log)
  }

  readonly countBytes = (chunk: Buffer): void => {
    this.bytesReceived += chunk.length
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
  if (state.dir.disposed || (raw.destroyed && !raw.complete)) {
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

/** Yields each file once it is completely on disk and its descriptor closed. */
export async function * iterateUploads (request: FastifyRequest, state: UploadState): AsyncGenerator<UploadedFile, void, undefined> {
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
        const filename = sanitiseFilename(part.filename)
        file = `file ${fileIndex} "${filename}"`
        const stored = await storeFile(request, state, part, fileIndex, filename, s => { stage ??= s })
        file = null
        stage = null
        state.dir.handOver()
        yield stored
      }
      next = parts.next()
    }
  } catch (err) {
    stopReading(raw)
    const error = toUploadError(err, {
      options: state.options,
      file,
      stage: stage === 'transform' || stage === 'write' ? stage : null,
      bytesReceived: state.bytesReceived,
      aborted: raw.destroyed && !raw.complete
    })
    done = true
    await state.dir.dispose(`upload failed: ${(error as { code?: string }).code ?? error.message}`)
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

/** Consumes every part; the files are on disk, the fields in `fields`. */
export async function saveAll (request: FastifyRequest, state: UploadState): Promise<SavedUploads> {
  const files: UploadedFile[] = []
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
  index: number,
  filename: string,
  failedAt: (stage: Stage) => void
): Promise<UploadedFile> {
  const { options, dir } = state
  part.file.once('error', () => failedAt('source'))
  let writer
  try {
    writer = await dir.open(storedFileName(index))
  } catch (err) {
    part.file.destroy()
    throw err
  }
  // FST_NEXURE_FILE_TOO_LARGE quotes this: the client's name, or the file's position without one.
  const meter = new UploadMeter(options.maxFileSize, options.hash, filename === '' ? `file ${index}` : filename)
  const transforms: Transform[] = []
  try {
    // The first stage that fails emits 'error' first; pipeline then destroys the others with
    // the same error, so only the first report counts.
    meter.once('error', () => failedAt('meter'))
    for (const factory of options.transforms) {
      const transform = factory(request, state.reply)
      transform.once('error', () => failedAt('transform'))
      transforms.push(transform)
    }
    writer.once('error', () => failedAt('write'))
    await pipeline(part.file, meter, ...transforms, writer)
  } catch (err) {
    stopReading(request.raw)
    if (transforms.length < options.transforms.length) failedAt('transform')
    for (const stream of [part.file, meter, ...transforms, writer]) stream.destroy()
    await writer.fileClosed
    // Deleted now, not at the end of the request: a file over the limit must not linger.
    await rm(writer.path, { force: true })
    throw err
  } finally {
    dir.settle(writer)
  }
  return {
    fieldname: part.fieldname,
    filename,
    mimetype: part.mimetype,
    encoding: part.encoding,
    path: writer.path,
    size: meter.bytes,
    hash: meter.digest()
  }
}
