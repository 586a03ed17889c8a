import createError from '@fastify/error'

// Every error nexure raises, defined once. The object key is the code; the list is a contract
// that test/errors.test.ts pins against the README's errors table and the exported types.
// Messages say where the fault is (byte offset, item index, line number) so a client can act.

/** The body (as received, or after decompression) is larger than `bodyLimit`. */
export const FST_NEXURE_BODY_TOO_LARGE = createError<'FST_NEXURE_BODY_TOO_LARGE', 413, [string, number]>(
  'FST_NEXURE_BODY_TOO_LARGE', 'Request body is too large: %s exceeds the limit of %s bytes', 413)

/** One array element or NDJSON line is larger than `maxItemSize`. */
export const FST_NEXURE_ITEM_TOO_LARGE = createError<'FST_NEXURE_ITEM_TOO_LARGE', 413, [string, number]>(
  'FST_NEXURE_ITEM_TOO_LARGE', 'Item too large: %s exceeds maxItemSize of %s bytes', 413)

/** The body is not valid JSON (or an NDJSON line is not). */
export const FST_NEXURE_INVALID_JSON = createError<'FST_NEXURE_INVALID_JSON', 400, [string]>(
  'FST_NEXURE_INVALID_JSON', 'Invalid JSON body: %s', 400)

/** A JSON body with no value at all. */
export const FST_NEXURE_EMPTY_BODY = createError<'FST_NEXURE_EMPTY_BODY', 400, []>(
  'FST_NEXURE_EMPTY_BODY', 'Body cannot be empty when content-type is set to a JSON type', 400)

/** A `__proto__` or `constructor.prototype` key, refused by the server's poisoning policy. */
export const FST_NEXURE_FORBIDDEN_PROPERTY = createError<'FST_NEXURE_FORBIDDEN_PROPERTY', 400, [string]>(
  'FST_NEXURE_FORBIDDEN_PROPERTY', 'Object contains forbidden prototype property: %s', 400)

/** `batches({ path })` names a value that is absent or not an array. */
export const FST_NEXURE_PATH_NOT_ARRAY = createError<'FST_NEXURE_PATH_NOT_ARRAY', 400, [string, string]>(
  'FST_NEXURE_PATH_NOT_ARRAY', 'Expected an array at path "%s": %s', 400)

/** `batches({ entries: true })` names a value (the top level, or at `path`) that is absent or not an object. */
export const FST_NEXURE_PATH_NOT_OBJECT = createError<'FST_NEXURE_PATH_NOT_OBJECT', 400, [string, string]>(
  'FST_NEXURE_PATH_NOT_OBJECT', 'Expected an object to stream as entries at %s: %s', 400)

/** An item failed the route's `itemSchema`. */
export const FST_NEXURE_INVALID_ITEM = createError<'FST_NEXURE_INVALID_ITEM', 400, [number, string]>(
  'FST_NEXURE_INVALID_ITEM', 'Item %s is invalid: %s', 400)

/** A `Content-Type` charset other than utf-8. */
export const FST_NEXURE_UNSUPPORTED_CHARSET = createError<'FST_NEXURE_UNSUPPORTED_CHARSET', 415, [string]>(
  'FST_NEXURE_UNSUPPORTED_CHARSET', 'Unsupported charset "%s": JSON bodies must be utf-8', 415)

/** A `Content-Encoding` other than gzip, deflate, br or identity. */
export const FST_NEXURE_UNSUPPORTED_ENCODING = createError<'FST_NEXURE_UNSUPPORTED_ENCODING', 415, [string]>(
  'FST_NEXURE_UNSUPPORTED_ENCODING', 'Unsupported content-encoding "%s": expected gzip, deflate, br or identity', 415)

/** A compressed body that cannot be decoded. */
export const FST_NEXURE_INVALID_ENCODING = createError<'FST_NEXURE_INVALID_ENCODING', 400, [string, string]>(
  'FST_NEXURE_INVALID_ENCODING', 'Cannot decode %s body: %s', 400)

/**
 * The client's content type does not fit what the handler asked for: batches() on a body that
 * is not JSON/NDJSON, batches({ path }) on NDJSON, uploads() on a body that is not multipart.
 */
export const FST_NEXURE_UNSUPPORTED_MEDIA_TYPE = createError<'FST_NEXURE_UNSUPPORTED_MEDIA_TYPE', 415, [string, string]>(
  'FST_NEXURE_UNSUPPORTED_MEDIA_TYPE', 'Unsupported media type "%s": expected %s', 415)

/** The client went away before the whole body arrived. */
export const FST_NEXURE_ABORTED = createError<'FST_NEXURE_ABORTED', 499, [string]>(
  'FST_NEXURE_ABORTED', 'Request aborted by the client: %s', 499)

/** The body was already taken by another call (batches(), bodyStream(), uploads()). */
export const FST_NEXURE_BODY_CONSUMED = createError<'FST_NEXURE_BODY_CONSUMED', 500, [string, string]>(
  'FST_NEXURE_BODY_CONSUMED', 'Cannot call %s: the request body was already consumed by %s', 500)

/** A user transform failed without an HTTP status of its own. */
export const FST_NEXURE_TRANSFORM_FAILED = createError<'FST_NEXURE_TRANSFORM_FAILED', 500, [string]>(
  'FST_NEXURE_TRANSFORM_FAILED', 'A body transform failed: %s', 500)

/** A plugin or route option is invalid; thrown at registration, never at a request. */
export const FST_NEXURE_INVALID_OPTION = createError<'FST_NEXURE_INVALID_OPTION', 500, [string, string]>(
  'FST_NEXURE_INVALID_OPTION', 'Invalid nexure option %s: %s', 500)

/**
 * A route handler passed an invalid argument to a request method (`batches({ size: 0 })`, a
 * malformed `path`), at request time: a bug in the application, not in the request.
 */
export const FST_NEXURE_INVALID_ARGUMENT = createError<'FST_NEXURE_INVALID_ARGUMENT', 500, [string, string]>(
  'FST_NEXURE_INVALID_ARGUMENT', 'Invalid argument to %s in the route handler: %s (a mistake in the application, not in the request)', 500)

/** An uploaded file is larger than `maxFileSize`. */
export const FST_NEXURE_FILE_TOO_LARGE = createError<'FST_NEXURE_FILE_TOO_LARGE', 413, [string, number]>(
  'FST_NEXURE_FILE_TOO_LARGE', 'File "%s" exceeds maxFileSize of %s bytes', 413)

/** More files than `maxFiles` in one multipart body. */
export const FST_NEXURE_TOO_MANY_FILES = createError<'FST_NEXURE_TOO_MANY_FILES', 413, [number]>(
  'FST_NEXURE_TOO_MANY_FILES', 'Too many files: the limit is %s', 413)

/** More fields than `maxFields` in one multipart body. */
export const FST_NEXURE_TOO_MANY_FIELDS = createError<'FST_NEXURE_TOO_MANY_FIELDS', 413, [number]>(
  'FST_NEXURE_TOO_MANY_FIELDS', 'Too many fields: the limit is %s', 413)

/** A text field larger than `maxFieldSize`. */
export const FST_NEXURE_FIELD_TOO_LARGE = createError<'FST_NEXURE_FIELD_TOO_LARGE', 413, [string, number]>(
  'FST_NEXURE_FIELD_TOO_LARGE', 'Field "%s" exceeds maxFieldSize of %s bytes', 413)

/** A multipart body that cannot be parsed (bad boundary, truncated part). */
export const FST_NEXURE_INVALID_MULTIPART = createError<'FST_NEXURE_INVALID_MULTIPART', 400, [string]>(
  'FST_NEXURE_INVALID_MULTIPART', 'Invalid multipart body: %s', 400)

/** Writing an upload to disk failed (full or read-only disk); everything written is removed. */
export const FST_NEXURE_UPLOAD_WRITE_FAILED = createError<'FST_NEXURE_UPLOAD_WRITE_FAILED', 500, [string]>(
  'FST_NEXURE_UPLOAD_WRITE_FAILED', 'Could not store the upload: %s', 500)

/** The body took longer than `bodyTimeout`, or the client stayed silent mid-body longer than `idleTimeout`. */
export const FST_NEXURE_BODY_TIMEOUT = createError<'FST_NEXURE_BODY_TIMEOUT', 408, [string]>(
  'FST_NEXURE_BODY_TIMEOUT', 'Request body timed out: %s', 408)

/** The files of one request total more than `maxTotalSize`. */
export const FST_NEXURE_TOTAL_TOO_LARGE = createError<'FST_NEXURE_TOTAL_TOO_LARGE', 413, [string, number]>(
  'FST_NEXURE_TOTAL_TOO_LARGE', 'The files of this request exceed maxTotalSize: %s crossed the limit of %s bytes', 413)

/** `fileFilter` refused a file, judged by its first bytes. */
export const FST_NEXURE_FILE_TYPE_REFUSED = createError<'FST_NEXURE_FILE_TYPE_REFUSED', 415, [string, string]>(
  'FST_NEXURE_FILE_TYPE_REFUSED', 'File %s was refused by fileFilter: %s', 415)

/** The disk under `tempDir` has less free space than `minFreeSpace`. */
export const FST_NEXURE_INSUFFICIENT_STORAGE = createError<'FST_NEXURE_INSUFFICIENT_STORAGE', 507, [string, string, number, number]>(
  'FST_NEXURE_INSUFFICIENT_STORAGE', 'Not enough free space to store %s: "%s" has %s bytes free, minFreeSpace is %s', 507)
