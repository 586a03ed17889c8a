import type { Transform } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { BufferPool } from './core/buffer-pool.js'
import { FST_NEXURE_INVALID_OPTION } from './errors.js'
import type { PressureBounds } from './stream/pressure.js'

/**
 * Makes one Transform per request (or per uploaded file). It receives the decoded bytes in
 * order and passes on what the next step should see; backpressure holds through it.
 */
export type TransformFactory = (request: FastifyRequest, reply: FastifyReply) => Transform

/** Options of `streamBody`, given at registration. */
export interface StreamBodyOptions {
  /**
   * A body whose Content-Length is at most this many bytes is read and parsed at once into
   * `request.body` (so `schema.body` works); a larger or chunked body is streamed.
   * @default 1048576 (1 MiB)
   */
  streamThreshold?: number
  /**
   * Items per batch yielded by `request.batches()`.
   * @default 1000
   */
  batchSize?: number
  /**
   * The most bytes a body may have, counted as received and again after decompression.
   * An explicit route `bodyLimit` wins.
   * @default 1073741824 (1 GiB)
   */
  bodyLimit?: number
  /**
   * The most bytes one array element or NDJSON line may have; crossing it is a 413 at once.
   * @default 16777216 (16 MiB)
   */
  maxItemSize?: number
  /**
   * The most levels of arrays and objects a JSON body or NDJSON line may nest (the streamed
   * array counts as one). Deeper input is a 400 at its first extra bracket: V8's `JSON.parse`
   * accepts any depth, but `JSON.stringify`, Ajv and `util.inspect` recurse and throw on such
   * values, and a million nested brackets cost hundreds of MB of heap.
   * @default 1000
   */
  maxDepth?: number
  /**
   * Slab size of the buffer pool, in bytes (the pool holds partial items across chunks).
   * @default 65536 (64 KiB)
   */
  maxBufferSize?: number
  /**
   * The stream pipeline's chunk size (highWaterMark of its stages), in bytes.
   * @default 16384 (16 KiB)
   */
  streamChunkSize?: number
  /**
   * The buffer pool to use, or `false` to allocate instead of pooling. By default the plugin
   * makes one `BufferPool` of `maxBufferSize` slabs per registration.
   * @default a new BufferPool
   */
  pool?: BufferPool | false
  /**
   * Transform factories applied, in order, to the decoded bytes of every streamed body
   * before parsing.
   * @default []
   */
  transforms?: TransformFactory[]
  /**
   * Content types served by `request.bodyStream()` (raw bytes, same threshold and limits).
   * @default ['application/octet-stream']
   */
  rawContentTypes?: string[]
  /**
   * When a handler answers without reading the whole body, up to this many unread bytes are
   * read and discarded so the keep-alive connection can be reused; a larger rest closes the
   * connection instead.
   * @default 65536 (64 KiB)
   */
  drainLimit?: number
  /**
   * The longest a whole body may take to arrive, in ms, from the first read; a slower one is
   * ended with 408. `0` for no limit (endless NDJSON feeds).
   * @default 0
   */
  bodyTimeout?: number
  /**
   * The longest the client may stay silent mid-body while nexure is waiting for bytes, in ms;
   * then 408. Time the handler spends on a batch does not count.
   * @default 30000
   */
  idleTimeout?: number
  /**
   * Adaptive throttling, off by default: while event-loop delay or heap use is over a bound,
   * nexure stops reading request bodies (TCP backpressure slows the clients) until it recovers.
   * `request.streamStats.throttledMs` reports the time a body spent held.
   * @default false
   */
  underPressure?: PressureBounds | false
  /**
   * What a record or item that cannot be used does to the body: `'fail'` answers 400 at the
   * first one; `'skip'` leaves it out, counts it in `request.streamStats.skipped` and goes on.
   * Skipped: an NDJSON line or JSON-sequence record that is not valid JSON (or nests past
   * `maxDepth`), and any item that fails `itemSchema`. A malformed JSON array still fails (its
   * structure is lost), and so do a record past `maxItemSize` and a forbidden property.
   * @default 'fail'
   */
  onInvalidItem?: 'fail' | 'skip'
  /**
   * With `onInvalidItem: 'skip'`, the most records or items one body may have left out; the
   * next one fails the body as with `'fail'`.
   * @default 1000
   */
  maxSkipped?: number
}

/** Options a route may set in `config.streamBody`; they override the plugin's. */
export interface StreamBodyRouteOptions {
  /** @see StreamBodyOptions.bodyLimit */
  bodyLimit?: number
  /** @see StreamBodyOptions.batchSize */
  batchSize?: number
  /** @see StreamBodyOptions.streamThreshold */
  streamThreshold?: number
  /** @see StreamBodyOptions.maxItemSize */
  maxItemSize?: number
  /** @see StreamBodyOptions.maxDepth */
  maxDepth?: number
  /**
   * JSON Schema every item must satisfy, compiled once with the route's validator compiler.
   * A failing item is a 400 `FST_NEXURE_INVALID_ITEM` naming its index.
   */
  itemSchema?: Record<string, unknown>
  /** Transform factories for this route; they replace the plugin's. */
  transforms?: TransformFactory[]
  /** @see StreamBodyOptions.bodyTimeout */
  bodyTimeout?: number
  /** @see StreamBodyOptions.idleTimeout */
  idleTimeout?: number
  /** @see StreamBodyOptions.onInvalidItem */
  onInvalidItem?: 'fail' | 'skip'
  /** @see StreamBodyOptions.maxSkipped */
  maxSkipped?: number
}

/** Options of one `request.batches()` call. */
export interface BatchesOptions {
  /**
   * Items per batch.
   * @default the route's or plugin's `batchSize`
   */
  size?: number
  /**
   * Dot path to the array to stream (`items`, `data.rows`); numeric segments index arrays.
   * Without it, the top-level value: an array yields its elements, anything else one batch
   * `[value]`.
   */
  path?: string
}

/** What happened to a streamed body; on `request.streamStats` once it has been read. */
export interface StreamStats {
  /** Bytes received from the socket. */
  bytesReceived: number
  /** Bytes after decompression (equal to bytesReceived for identity). */
  bytesDecoded: number
  /** Items yielded to the handler. */
  items: number
  /** Batches yielded to the handler. */
  batches: number
  /** Milliseconds from the first read to the end of the body. */
  durationMs: number
  /** Buffer pool acquires served from the pool during this body. */
  poolHits: number
  /** Buffer pool acquires that allocated during this body. */
  poolMisses: number
  /** Milliseconds intake was held by adaptive throttling (`underPressure`). */
  throttledMs: number
  /** Records or items left out under `onInvalidItem: 'skip'`. */
  skipped: number
  /** The first 100 of them, in body order. */
  skippedItems: SkippedItem[]
}

/** One record or item left out under `onInvalidItem: 'skip'`. */
export interface SkippedItem {
  /** 0-based index among the body's items (array elements, or non-blank records), counting skipped ones. */
  index: number
  /** 1-based line (NDJSON) or record (JSON text sequence); null for an array element. */
  line: number | null
  /** Byte offset in the (decoded) body of the fault, or of the item's start; null for an array element. */
  offset: number | null
  /** The error code the item would have failed the body with (FST_NEXURE_INVALID_JSON, FST_NEXURE_INVALID_ITEM). */
  code: string
  /** That error's message. */
  message: string
}

/** How many skipped items `streamStats.skippedItems` keeps. */
export const SKIPPED_ITEMS_KEPT = 100

export const STREAM_BODY_DEFAULTS = Object.freeze({
  streamThreshold: 1024 * 1024,
  batchSize: 1000,
  bodyLimit: 1024 * 1024 * 1024,
  maxItemSize: 16 * 1024 * 1024,
  maxDepth: 1000,
  maxBufferSize: 64 * 1024,
  streamChunkSize: 16 * 1024,
  drainLimit: 64 * 1024,
  bodyTimeout: 0,
  idleTimeout: 30_000,
  onInvalidItem: 'fail' as const,
  maxSkipped: 1000
})

export const JSON_CONTENT_TYPES: readonly string[] = ['application/json']
/** `application/*+json` (RFC 6839 structured syntax suffix), e.g. application/vnd.api+json. */
export const JSON_SUFFIX_CONTENT_TYPE = /^application\/[^\s;/]+\+json(?:\s*;|$)/i
export const NDJSON_CONTENT_TYPES: readonly string[] = ['application/x-ndjson', 'application/jsonl', 'application/x-jsonlines']
/** JSON text sequences (RFC 7464): records that start with RS (0x1E). */
export const JSON_SEQ_CONTENT_TYPES: readonly string[] = ['application/json-seq']
export const RAW_CONTENT_TYPES: readonly string[] = ['application/octet-stream']

/** The options of one registration, normalised: every field present, frozen. */
export interface ResolvedStreamBodyOptions {
  readonly streamThreshold: number
  readonly batchSize: number
  readonly bodyLimit: number
  readonly maxItemSize: number
  readonly maxDepth: number
  readonly maxBufferSize: number
  readonly streamChunkSize: number
  readonly pool: BufferPool | null
  readonly transforms: readonly TransformFactory[]
  readonly rawContentTypes: readonly string[]
  readonly drainLimit: number
  readonly bodyTimeout: number
  readonly idleTimeout: number
  readonly underPressure: Readonly<PressureBounds> | null
  readonly onInvalidItem: 'fail' | 'skip'
  readonly maxSkipped: number
}

/** What a route runs with: the plugin's options with the route's `config.streamBody` on top. */
export interface ResolvedRouteOptions {
  readonly streamThreshold: number
  readonly batchSize: number
  readonly bodyLimit: number
  readonly maxItemSize: number
  readonly maxDepth: number
  readonly transforms: readonly TransformFactory[]
  readonly itemSchema: Record<string, unknown> | null
  readonly bodyTimeout: number
  readonly idleTimeout: number
  readonly onInvalidItem: 'fail' | 'skip'
  readonly maxSkipped: number
}

type Fail = (name: string, why: string) => Error

/** The error for an invalid option, raised at registration. */
export function invalidOption (name: string, why: string): Error {
  return new FST_NEXURE_INVALID_OPTION(name, why)
}

function positiveInteger (fail: Fail, name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw fail(name, `must be a positive integer, got ${describe(value)}`)
  }
  return value
}

function nonNegativeInteger (fail: Fail, name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw fail(name, `must be a non-negative integer, got ${describe(value)}`)
  }
  return value
}

function transformList (fail: Fail, name: string, value: unknown, fallback: readonly TransformFactory[]): readonly TransformFactory[] {
  if (value === undefined) return fallback
  if (!Array.isArray(value) || !value.every(f => typeof f === 'function')) {
    throw fail(name, 'must be an array of functions (request, reply) => Transform')
  }
  return Object.freeze([...value] as TransformFactory[])
}

function invalidItemPolicy (fail: Fail, name: string, value: unknown, fallback: 'fail' | 'skip'): 'fail' | 'skip' {
  if (value === undefined) return fallback
  if (value !== 'fail' && value !== 'skip') throw fail(name, `must be 'fail' or 'skip', got ${describe(value)}`)
  return value
}

function describe (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (value === null || typeof value !== 'object') return String(value)
  return Array.isArray(value) ? 'an array' : 'an object'
}

const PLUGIN_KEYS = new Set(['streamThreshold', 'batchSize', 'bodyLimit', 'maxItemSize', 'maxDepth', 'maxBufferSize',
  'streamChunkSize', 'pool', 'transforms', 'rawContentTypes', 'drainLimit', 'bodyTimeout', 'idleTimeout', 'underPressure', 'onInvalidItem', 'maxSkipped'])
const ROUTE_KEYS = new Set(['streamThreshold', 'batchSize', 'bodyLimit', 'maxItemSize', 'maxDepth', 'itemSchema', 'transforms',
  'bodyTimeout', 'idleTimeout', 'onInvalidItem', 'maxSkipped'])
const PRESSURE_KEYS = new Set(['maxEventLoopDelay', 'maxHeapUsedBytes', 'sampleInterval'])

function pressureBounds (fail: Fail, value: unknown): Readonly<PressureBounds> | null {
  if (value === undefined || value === false) return null
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw fail('underPressure', 'must be false or { maxEventLoopDelay, maxHeapUsedBytes, sampleInterval }')
  }
  unknownKeys(fail, 'underPressure.', value, PRESSURE_KEYS)
  const bounds = value as PressureBounds
  const result: PressureBounds = {}
  if (bounds.maxEventLoopDelay !== undefined) result.maxEventLoopDelay = positiveInteger(fail, 'underPressure.maxEventLoopDelay', bounds.maxEventLoopDelay, 0)
  if (bounds.maxHeapUsedBytes !== undefined) result.maxHeapUsedBytes = positiveInteger(fail, 'underPressure.maxHeapUsedBytes', bounds.maxHeapUsedBytes, 0)
  if (result.maxEventLoopDelay === undefined && result.maxHeapUsedBytes === undefined) {
    throw fail('underPressure', 'needs maxEventLoopDelay or maxHeapUsedBytes')
  }
  result.sampleInterval = positiveInteger(fail, 'underPressure.sampleInterval', bounds.sampleInterval, 50)
  return Object.freeze(result)
}

function unknownKeys (fail: Fail, prefix: string, options: object, known: Set<string>): void {
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw fail(`${prefix}${key}`, `is not an option (known: ${[...known].join(', ')})`)
  }
}

/**
 * Normalises the options given to `register(streamBody, options)` into a fresh frozen object.
 * The caller's object is never modified; an invalid value throws here, at registration.
 */
export function normalizeStreamBodyOptions (
  options: StreamBodyOptions,
  fail: Fail,
  makePool: (slabSize: number) => BufferPool
): ResolvedStreamBodyOptions {
  // Fastify hands plugins their options object; its own keys (prefix, logLevel) are not ours.
  const { prefix: _prefix, logLevel: _logLevel, logSerializers: _ls, ...own } = options as StreamBodyOptions & Record<string, unknown>
  unknownKeys(fail, '', own, PLUGIN_KEYS)
  const d = STREAM_BODY_DEFAULTS
  const maxBufferSize = positiveInteger(fail, 'maxBufferSize', own.maxBufferSize, d.maxBufferSize)
  let pool: BufferPool | null
  if (own.pool === undefined) pool = makePool(maxBufferSize)
  else if (own.pool === false) pool = null
  else if (typeof own.pool === 'object' && own.pool !== null && typeof own.pool.acquire === 'function') pool = own.pool
  else throw fail('pool', 'must be a BufferPool or false')

  const rawContentTypes = own.rawContentTypes ?? RAW_CONTENT_TYPES
  if (!Array.isArray(rawContentTypes) || !rawContentTypes.every(t => typeof t === 'string' && /^[\w.+-]+\/[\w.+-]+$/.test(t))) {
    throw fail('rawContentTypes', 'must be an array of media types such as "application/octet-stream"')
  }
  return Object.freeze({
    streamThreshold: nonNegativeInteger(fail, 'streamThreshold', own.streamThreshold, d.streamThreshold),
    batchSize: positiveInteger(fail, 'batchSize', own.batchSize, d.batchSize),
    bodyLimit: positiveInteger(fail, 'bodyLimit', own.bodyLimit, d.bodyLimit),
    maxItemSize: positiveInteger(fail, 'maxItemSize', own.maxItemSize, d.maxItemSize),
    maxDepth: positiveInteger(fail, 'maxDepth', own.maxDepth, d.maxDepth),
    maxBufferSize,
    streamChunkSize: positiveInteger(fail, 'streamChunkSize', own.streamChunkSize, d.streamChunkSize),
    pool,
    transforms: transformList(fail, 'transforms', own.transforms, []),
    rawContentTypes: Object.freeze(rawContentTypes.map(t => t.toLowerCase())),
    drainLimit: nonNegativeInteger(fail, 'drainLimit', own.drainLimit, d.drainLimit),
    bodyTimeout: nonNegativeInteger(fail, 'bodyTimeout', own.bodyTimeout, d.bodyTimeout),
    idleTimeout: nonNegativeInteger(fail, 'idleTimeout', own.idleTimeout, d.idleTimeout),
    underPressure: pressureBounds(fail, own.underPressure),
    onInvalidItem: invalidItemPolicy(fail, 'onInvalidItem', own.onInvalidItem, d.onInvalidItem),
    maxSkipped: nonNegativeInteger(fail, 'maxSkipped', own.maxSkipped, d.maxSkipped)
  })
}

/**
 * Resolves what one route runs with. `routeBodyLimit` is the route's own `bodyLimit` option,
 * given only when the route set it explicitly (Fastify fills in its server default otherwise,
 * which must not override the plugin's much larger default).
 */
export function resolveRouteOptions (
  plugin: ResolvedStreamBodyOptions,
  config: unknown,
  routeBodyLimit: number | undefined,
  fail: Fail
): ResolvedRouteOptions {
  const route = (config ?? {}) as StreamBodyRouteOptions
  if (typeof route !== 'object' || Array.isArray(route)) throw fail('config.streamBody', 'must be an object')
  unknownKeys(fail, 'config.streamBody.', route, ROUTE_KEYS)
  const itemSchema = route.itemSchema ?? null
  if (itemSchema !== null && (typeof itemSchema !== 'object' || Array.isArray(itemSchema))) {
    throw fail('config.streamBody.itemSchema', 'must be a JSON Schema object')
  }
  const explicitLimit = route.bodyLimit ?? routeBodyLimit
  return Object.freeze({
    streamThreshold: nonNegativeInteger(fail, 'config.streamBody.streamThreshold', route.streamThreshold, plugin.streamThreshold),
    batchSize: positiveInteger(fail, 'config.streamBody.batchSize', route.batchSize, plugin.batchSize),
    bodyLimit: positiveInteger(fail, 'config.streamBody.bodyLimit', explicitLimit, plugin.bodyLimit),
    maxItemSize: positiveInteger(fail, 'config.streamBody.maxItemSize', route.maxItemSize, plugin.maxItemSize),
    maxDepth: positiveInteger(fail, 'config.streamBody.maxDepth', route.maxDepth, plugin.maxDepth),
    transforms: transformList(fail, 'config.streamBody.transforms', route.transforms, plugin.transforms),
    itemSchema,
    bodyTimeout: nonNegativeInteger(fail, 'config.streamBody.bodyTimeout', route.bodyTimeout, plugin.bodyTimeout),
    idleTimeout: nonNegativeInteger(fail, 'config.streamBody.idleTimeout', route.idleTimeout, plugin.idleTimeout),
    onInvalidItem: invalidItemPolicy(fail, 'config.streamBody.onInvalidItem', route.onInvalidItem, plugin.onInvalidItem),
    maxSkipped: nonNegativeInteger(fail, 'config.streamBody.maxSkipped', route.maxSkipped, plugin.maxSkipped)
  })
}
