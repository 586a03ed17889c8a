import { statSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createHash, getHashes } from 'node:crypto'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { FastifyRequest } from 'fastify'
import { STREAM_BODY_DEFAULTS, type TransformFactory } from '../options.js'
import { BufferPool } from '../core/buffer-pool.js'
import {
  boolean,
  FASTIFY_REGISTER_KEYS,
  describe,
  functionList,
  integer,
  invalid,
  optionsObject,
  REGISTRATION,
  scopeOf,
  type OptionScope
} from '../option-check.js'
import { DiskStorage } from './disk-storage.js'
import type { DiskStoredFile, StorageEngine, UploadFileInfo } from './storage.js'

/**
 * Decides from a file's first bytes (up to 4 KiB; fewer when the file is shorter) whether to
 * store it, before anything is stored. `false` refuses it with a 415 `FST_NEXURE_FILE_TYPE_REFUSED`.
 * A thrown error fails the request with that error.
 */
export type FileFilter = (file: UploadFileInfo, head: Buffer, request: FastifyRequest) => boolean | Promise<boolean>

/** Options of `streamUpload`, given at registration. */
export interface StreamUploadOptions {
  /**
   * Directory under which every request gets its own `mkdtemp` directory (`nexure-XXXXXX`).
   * Must exist when the plugin (or the route) is registered.
   * @default os.tmpdir()
   */
  tempDir?: string
  /**
   * The most bytes one file may have, as sent by the client. Crossing it is a 413
   * `FST_NEXURE_FILE_TOO_LARGE` at once, and the partial file is deleted at once.
   * @default 1073741824 (1 GiB)
   */
  maxFileSize?: number
  /**
   * The most files in one request; one more is a 413 `FST_NEXURE_TOO_MANY_FILES`.
   * @default 100
   */
  maxFiles?: number
  /**
   * The most text fields in one request; one more is a 413 `FST_NEXURE_TOO_MANY_FIELDS`.
   * @default 1000
   */
  maxFields?: number
  /**
   * The most bytes one text field may have; more is a 413 `FST_NEXURE_FIELD_TOO_LARGE`.
   * @default 1048576 (1 MiB)
   */
  maxFieldSize?: number
  /**
   * Keep the files the handler received after the response. They then belong to the
   * application, which must remove them (`fs.rm(path.dirname(file.path), { recursive: true })`).
   * Partial files of a failed or aborted upload are deleted anyway.
   * @default false
   */
  keepFiles?: boolean
  /**
   * `false`, or a `node:crypto` hash algorithm (`'sha256'`, `'md5'`, ...) computed while the
   * file is written; its hex digest is `file.hash`.
   * @default false
   */
  hash?: false | string
  /**
   * Transform factories applied, in order, to every file's bytes before they are written.
   * Called once per file.
   * @default []
   */
  transforms?: TransformFactory[]
  /**
   * The pool of 64 KiB slabs in which small chunks are gathered into larger writes, or `false`
   * to write every chunk as it comes. A pool given here must have `slabSize` of at least 4 KiB.
   * @default a new BufferPool({ slabSize: 65536, maxPooled: 16 })
   */
  pool?: BufferPool | false
  /**
   * Where files go: `'disk'` (per-request temp directories under `tempDir`) or a storage
   * engine such as `s3Storage({ client, bucket })`, or one of your own (see `StorageEngine`).
   * @default 'disk'
   */
  storage?: 'disk' | StorageEngine
  /**
   * The most bytes all files of one request may have together, as sent by the client.
   * Crossing it is a 413 `FST_NEXURE_TOTAL_TOO_LARGE` at once; every file of the request is removed.
   * @default Infinity (bounded by maxFiles × maxFileSize)
   */
  maxTotalSize?: number
  /**
   * Called with each file's first bytes (up to 4 KiB) before anything is stored, to check its
   * type by its magic bytes rather than the client's mimetype. Returning `false` refuses the
   * request with a 415 `FST_NEXURE_FILE_TYPE_REFUSED`.
   * @default null (every file is stored)
   */
  fileFilter?: FileFilter | null
  /**
   * Disk storage only: the fewest bytes that must stay free on `tempDir`'s file system
   * (`fs.statfs`, checked before each file). Less is a 507 `FST_NEXURE_INSUFFICIENT_STORAGE`.
   * @default 0 (no check)
   */
  minFreeSpace?: number
  /**
   * When the answer goes out before the whole body was read (a 413 halfway through a file, a
   * handler that never read it), up to this many unread bytes are read and discarded so the
   * keep-alive connection can be reused; a larger rest closes the connection instead. The same
   * policy as streamBody's `drainLimit`. Plugin level only.
   * @default 65536 (64 KiB)
   */
  drainLimit?: number
}

/** Options a route may set in `config.streamUpload`; each one overrides the plugin's. */
export interface StreamUploadRouteOptions {
  /** @see StreamUploadOptions.tempDir */
  tempDir?: string
  /** @see StreamUploadOptions.maxFileSize */
  maxFileSize?: number
  /** @see StreamUploadOptions.maxFiles */
  maxFiles?: number
  /** @see StreamUploadOptions.maxFields */
  maxFields?: number
  /** @see StreamUploadOptions.maxFieldSize */
  maxFieldSize?: number
  /** @see StreamUploadOptions.keepFiles */
  keepFiles?: boolean
  /** @see StreamUploadOptions.hash */
  hash?: false | string
  /** Transform factories for this route's files; they replace the plugin's. */
  transforms?: TransformFactory[]
  /** @see StreamUploadOptions.storage */
  storage?: 'disk' | StorageEngine
  /** @see StreamUploadOptions.maxTotalSize */
  maxTotalSize?: number
  /** @see StreamUploadOptions.fileFilter */
  fileFilter?: FileFilter | null
  /** @see StreamUploadOptions.minFreeSpace */
  minFreeSpace?: number
}

/** What every stored file carries, whatever the storage. */
export interface UploadedFileBase {
  /** The form field name the file came in. */
  fieldname: string
  /**
   * The client's file name, sanitized (no directories, no control characters); metadata only,
   * never used to build a path. May be empty.
   */
  filename: string
  /** The part's Content-Type, as the client declared it. */
  mimetype: string
  /** The part's Content-Transfer-Encoding (`7bit` when absent). */
  encoding: string
  /** Bytes the client sent for this file. */
  size: number
  /** Hex digest of the bytes the client sent (with the `hash` option), else `null`. */
  hash: string | null
}

/**
 * One file, completely stored, with what the storage engine says about where it is: `path` for
 * disk (the default), `key`, `bucket` and `etag` for `s3Storage` (`UploadedFile<S3StoredFile>`).
 */
export type UploadedFile<Stored extends object = DiskStoredFile> = UploadedFileBase & Stored

/** Live progress of a multipart request: `request.uploadStats`. */
export interface UploadStats {
  /** Bytes of the request body received so far. */
  readonly bytesReceived: number
  /** Files completely stored so far. */
  readonly files: number
  /** The file being received now, or `null` between files. */
  readonly currentFile: { readonly fieldname: string, readonly filename: string, readonly index: number, readonly bytes: number } | null
}

/** Text fields by name; a name sent more than once maps to an array, in arrival order. */
export type UploadFields = Record<string, string | string[]>

/** What `request.saveUploads()` returns. */
export interface SavedUploads<Stored extends object = DiskStoredFile> {
  files: Array<UploadedFile<Stored>>
  fields: UploadFields
}

export const STREAM_UPLOAD_DEFAULTS = Object.freeze({
  maxFileSize: 1024 * 1024 * 1024,
  maxFiles: 100,
  maxFields: 1000,
  maxFieldSize: 1024 * 1024,
  keepFiles: false,
  hash: false as const,
  maxTotalSize: Infinity,
  minFreeSpace: 0,
  drainLimit: STREAM_BODY_DEFAULTS.drainLimit
})

/** Options normalized: every field present, frozen. Plugin and route options resolve to this. */
export interface ResolvedUploadOptions {
  readonly tempDir: string
  readonly maxFileSize: number
  readonly maxFiles: number
  readonly maxFields: number
  readonly maxFieldSize: number
  readonly keepFiles: boolean
  readonly hash: string | false
  readonly transforms: readonly TransformFactory[]
  readonly pool: BufferPool | null
  readonly maxTotalSize: number
  readonly fileFilter: FileFilter | null
  readonly minFreeSpace: number
  readonly drainLimit: number
  /** `'disk'` or the engine given; `storage` is what it resolves to. */
  readonly storageOption: 'disk' | StorageEngine
  readonly storage: StorageEngine
}

const OPTION_NAMES: ReadonlySet<string> = new Set(['tempDir', 'maxFileSize', 'maxFiles', 'maxFields', 'maxFieldSize', 'keepFiles', 'hash', 'transforms', 'pool', 'storage', 'maxTotalSize', 'fileFilter', 'minFreeSpace', 'drainLimit'])
// The pool and the unread-body policy are the registration's, not a route's.
const ROUTE_OPTION_NAMES: ReadonlySet<string> = new Set([...OPTION_NAMES].filter(name => name !== 'pool' && name !== 'drainLimit'))
// Below a page, gathering chunks into a slab would not save writes worth the copy.
const MIN_SLAB_SIZE = 4096
const LIMIT_NAMES = ['maxFileSize', 'maxFiles', 'maxFields', 'maxFieldSize', 'maxTotalSize', 'minFreeSpace'] as const

// Limits are counts of bytes or parts: non-negative integers, or Infinity for "no limit".
const LIMIT = { min: 0, infinity: true } as const

function checkHash (at: OptionScope, value: unknown): string | false {
  if (value === false) return false
  if (typeof value !== 'string' || !getHashes().includes(value)) {
    throw invalid(at, 'hash', `expected false or one of crypto.getHashes() (e.g. "sha256"), got ${describe(value)}`)
  }
  try {
    createHash(value)
  } catch (err) {
    throw invalid(at, 'hash', `"${value}" cannot be used with crypto.createHash: ${(err as Error).message}`)
  }
  return value
}

function checkPool (at: OptionScope, value: unknown): BufferPool | null {
  if (value === false) return null
  if (!(value instanceof BufferPool) || value.slabSize < MIN_SLAB_SIZE) {
    throw invalid(at, 'pool', `expected false or a BufferPool with slabSize >= ${MIN_SLAB_SIZE}, got ${describe(value)}`)
  }
  return value
}

function checkStorage (at: OptionScope, value: unknown): 'disk' | StorageEngine {
  if (value === 'disk') return value
  const engine = value as Partial<StorageEngine> | null
  if (engine === null || typeof engine !== 'object' || typeof engine.open !== 'function' ||
    typeof engine.remove !== 'function' || typeof engine.durable !== 'boolean' ||
    (engine.ready !== undefined && typeof engine.ready !== 'function')) {
    throw invalid(at, 'storage', `expected 'disk' or a storage engine ({ durable, open(), remove() }, e.g. s3Storage(...)), got ${describe(value)}`)
  }
  return engine as StorageEngine
}

function checkFileFilter (at: OptionScope, value: unknown): FileFilter | null {
  if (value === null) return null
  if (typeof value !== 'function') throw invalid(at, 'fileFilter', `expected a function (file, head) => boolean or null, got ${describe(value)}`)
  return value as FileFilter
}

function checkTempDirPath (at: OptionScope, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.includes('\0')) {
    throw invalid(at, 'tempDir', `expected a directory path, got ${describe(value)}`)
  }
  return path.resolve(value)
}

function notADirectory (at: OptionScope, dir: string, err?: unknown): Error {
  const why = err === undefined ? 'not a directory' : (err as NodeJS.ErrnoException).code ?? String(err)
  return invalid(at, 'tempDir', `"${dir}" is not an existing directory (${why})`)
}

// Shared by plugin and route normalization: `base` supplies what `options` leaves out.
function merge (at: OptionScope, options: Record<string, unknown>, base: ResolvedUploadOptions): ResolvedUploadOptions {
  const limits = { ...base } as Record<(typeof LIMIT_NAMES)[number], number>
  for (const name of LIMIT_NAMES) {
    limits[name] = integer(at, name, options[name], limits[name], LIMIT)
  }
  const storageOption = options.storage === undefined ? base.storageOption : checkStorage(at, options.storage)
  if (storageOption !== 'disk' && limits.minFreeSpace > 0) {
    throw invalid(at, 'minFreeSpace', 'applies to storage \'disk\' only (a storage engine watches its own capacity)')
  }
  const tempDir = options.tempDir === undefined ? base.tempDir : checkTempDirPath(at, options.tempDir)
  const pool = options.pool === undefined ? base.pool : checkPool(at, options.pool)
  return Object.freeze({
    tempDir,
    maxFileSize: limits.maxFileSize,
    maxFiles: limits.maxFiles,
    maxFields: limits.maxFields,
    maxFieldSize: limits.maxFieldSize,
    maxTotalSize: limits.maxTotalSize,
    minFreeSpace: limits.minFreeSpace,
    drainLimit: integer(at, 'drainLimit', options.drainLimit, base.drainLimit, { min: 0 }),
    keepFiles: boolean(at, 'keepFiles', options.keepFiles, base.keepFiles),
    hash: options.hash === undefined ? base.hash : checkHash(at, options.hash),
    transforms: functionList<TransformFactory>(at, 'transforms', options.transforms, base.transforms, 'functions returning a Transform'),
    pool,
    fileFilter: options.fileFilter === undefined ? base.fileFilter : checkFileFilter(at, options.fileFilter),
    storageOption,
    // One disk engine per resolved options: its per-request directories live under this tempDir.
    storage: storageOption === 'disk' ? new DiskStorage({ tempDir, pool, minFreeSpace: limits.minFreeSpace }) : storageOption
  })
}

/**
 * Validates the plugin's options and returns a fresh frozen copy with every default filled in.
 * The caller's object is never written to. Throws FST_NEXURE_INVALID_OPTION.
 */
export async function normalizeUploadOptions (options?: StreamUploadOptions): Promise<ResolvedUploadOptions> {
  const checked = optionsObject(REGISTRATION, options, OPTION_NAMES, FASTIFY_REGISTER_KEYS)
  const pool = checked.pool === undefined ? new BufferPool({ slabSize: 64 * 1024, maxPooled: 16 }) : null
  const base: ResolvedUploadOptions = {
    ...STREAM_UPLOAD_DEFAULTS,
    tempDir: tmpdir(),
    transforms: Object.freeze([]),
    pool,
    fileFilter: null,
    storageOption: 'disk',
    storage: new DiskStorage({ tempDir: tmpdir(), pool, minFreeSpace: 0 })
  }
  const resolved = merge(REGISTRATION, checked, base)
  if (resolved.storageOption === 'disk') {
    const info = await stat(resolved.tempDir).catch((err: unknown) => { throw notADirectory(REGISTRATION, resolved.tempDir, err) })
    if (!info.isDirectory()) throw notADirectory(REGISTRATION, resolved.tempDir)
  }
  await resolved.storage.ready?.()
  return resolved
}

/**
 * Validates a route's `config.streamUpload` (at route registration, from the onRoute hook) and
 * returns the plugin's options with the route's on top, frozen.
 */
export function normalizeRouteUploadOptions (routeOptions: unknown, plugin: ResolvedUploadOptions, route: string): ResolvedUploadOptions {
  const at = scopeOf('config.streamUpload.', ` of ${route}`)
  const checked = optionsObject(at, routeOptions, ROUTE_OPTION_NAMES)
  const resolved = merge(at, checked, plugin)
  if (resolved.storageOption === 'disk' && resolved.tempDir !== plugin.tempDir) {
    let isDirectory: boolean
    try {
      isDirectory = statSync(resolved.tempDir).isDirectory()
    } catch (err) {
      throw notADirectory(at, resolved.tempDir, err)
    }
    if (!isDirectory) throw notADirectory(at, resolved.tempDir)
  }
  return resolved
}
