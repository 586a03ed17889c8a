import {
  FST_NEXURE_ABORTED,
  FST_NEXURE_FILE_TOO_LARGE,
  FST_NEXURE_INVALID_MULTIPART,
  FST_NEXURE_TOO_MANY_FIELDS,
  FST_NEXURE_TOO_MANY_FILES,
  FST_NEXURE_TRANSFORM_FAILED,
  FST_NEXURE_UPLOAD_WRITE_FAILED
} from '../errors.js'
import type { ResolvedUploadOptions } from './options.js'

type CodedError = Error & { code?: string, statusCode?: number }

/** Where an upload was when it failed; the mapped error's message says so. */
export interface FailureContext {
  readonly options: ResolvedUploadOptions
  /** `file 2 "cat.png"`, or null between files. */
  readonly file: string | null
  /** Which stage of the file's pipeline failed first, if it was one of ours to tell. */
  readonly stage: 'filter' | 'transform' | 'write' | null
  readonly bytesReceived: number
  readonly aborted: boolean
}

/**
 * Turns whatever broke an upload (a @fastify/multipart or busboy error, an fs error, a user
 * transform's error) into one of nexure's coded errors. nexure's own errors pass through.
 */
export function toUploadError (err: unknown, context: FailureContext): Error {
  const error: CodedError = err instanceof Error ? err : new Error(String(err))
  if (error.code?.startsWith('FST_NEXURE_')) return error
  const where = context.file === null ? `after ${context.bytesReceived} bytes` : `in ${context.file}, after ${context.bytesReceived} bytes`
  if (context.aborted || error.code === 'FST_MP_PREMATURE_CLOSE') return new FST_NEXURE_ABORTED(where)
  switch (error.code) {
    case 'FST_FILES_LIMIT': return new FST_NEXURE_TOO_MANY_FILES(context.options.maxFiles)
    case 'FST_FIELDS_LIMIT': return new FST_NEXURE_TOO_MANY_FIELDS(context.options.maxFields)
    case 'FST_REQ_FILE_TOO_LARGE': return new FST_NEXURE_FILE_TOO_LARGE(context.file ?? 'unknown', context.options.maxFileSize)
    case 'FST_PARTS_LIMIT': return new FST_NEXURE_INVALID_MULTIPART(`too many parts (${where})`)
    case 'FST_PROTO_VIOLATION': return new FST_NEXURE_INVALID_MULTIPART(`a field is named after an Object.prototype property such as "__proto__" (${where})`)
    case 'FST_INVALID_JSON_FIELD_ERROR': return new FST_NEXURE_INVALID_MULTIPART(`a field declared application/json is not valid JSON (${where})`)
  }
  // fileFilter's own error is the application's answer: passed on as it is.
  if (context.stage === 'filter') return error
  if (context.stage === 'write') {
    return new FST_NEXURE_UPLOAD_WRITE_FAILED(`writing ${context.file ?? 'a file'} failed (${error.code ?? error.message})`)
  }
  if (context.stage === 'transform') {
    if (typeof error.statusCode === 'number') return error
    return new FST_NEXURE_TRANSFORM_FAILED(`${error.message} (${where})`)
  }
  return new FST_NEXURE_INVALID_MULTIPART(`${error.message} (${where})`)
}
