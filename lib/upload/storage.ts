import type { Writable } from 'node:stream'
import type { FastifyRequest } from 'fastify'

// The storage-engine contract: where a file's bytes go once nexure has counted, limited, hashed
// and transformed them. Disk (`diskStorage`, the default) and S3 (`s3Storage`) implement it; so
// can an application (GCS, Azure, a database). nexure owns the lifetime rules; an engine only
// has to write, make durable, undo one file, and remove files it made.

/** What nexure knows of a file before it is stored: given to `fileFilter`, `open()` and key builders. */
export interface UploadFileInfo {
  /** The form field name the file came in. */
  readonly fieldname: string
  /** The client's file name, sanitized (no directories, no control characters); may be empty. */
  readonly filename: string
  /** The part's Content-Type, as the client declared it (untrusted). */
  readonly mimetype: string
  /** The part's Content-Transfer-Encoding (`7bit` when absent). */
  readonly encoding: string
  /** Position of the file in the request, from 1. */
  readonly index: number
}

/** Where one file's bytes go; returned by `StorageEngine.open()`. */
export interface StorageSink<Stored extends object = object> {
  /**
   * nexure pipes the file's bytes into this stream, with backpressure, and ends it after the
   * last byte. It destroys it when the file fails; `abort()` follows.
   */
  readonly writable: Writable
  /**
   * Called once, after `writable` finished: make the file durable and say where it is. The
   * object is merged into the `UploadedFile` the handler gets (`{ path }`, `{ key, bucket, etag }`).
   * A rejection fails the upload (500 `FST_NEXURE_UPLOAD_WRITE_FAILED`), and `abort()` follows.
   */
  commit (): Promise<Stored>
  /**
   * Called once instead of a successful `commit()`, when the file failed (a limit, the client
   * went away, a storage error) or the request ended first: leave nothing behind (delete the
   * partial data, abort the multipart upload). Must not reject.
   */
  abort (reason: Error): Promise<void>
}

/** A storage engine: `storage` option of `streamUpload`. */
export interface StorageEngine<Stored extends object = object> {
  /**
   * `true` when a committed file is the destination (object storage): it is kept after a
   * successful request. `false` when files are scratch copies (disk): they are removed after
   * every request unless `keepFiles`.
   */
  readonly durable: boolean
  /**
   * Opens the destination of one file, after `fileFilter` accepted it. A rejection fails the
   * upload (500 `FST_NEXURE_UPLOAD_WRITE_FAILED` unless the error has a `statusCode`).
   */
  open (file: UploadFileInfo, request: FastifyRequest): Promise<StorageSink<Stored>>
  /**
   * Called once per request that opened a file, after every sink of it settled: removes the
   * committed files nexure lists (all of them when the request failed; for an engine that is
   * not `durable`, the ones not kept) and drops any per-request state. Must not reject for a
   * file that is already gone.
   */
  remove (files: readonly Stored[], request: FastifyRequest): Promise<void>
  /**
   * Optional: awaited when the plugin is registered with this engine (load a client library,
   * check a bucket), so that a broken setup fails at startup. Route registration is
   * synchronous: an engine given in a route's `config.streamUpload` must also work without it.
   */
  ready? (): Promise<void>
}

/** What the disk engine adds to an `UploadedFile`. */
export interface DiskStoredFile {
  /** Where the file is, under a generated name inside the request's own directory. */
  path: string
}
