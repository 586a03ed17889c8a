import type { Transform } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { BufferPool } from './core/buffer-pool.js'
import { FST_NEXURE_INVALID_ARGUMENT } from './errors.js'
import { ENGINE_DEFAULTS, filterOption, pathOption, type PathFilter } from './core/engine-options.js'
import type { PathSegment } from './core/path.js'
import {
  describe,
  FASTIFY_REGISTER_KEYS,
  boolean,
  functionList,
  invalid,
  nonNegativeInteger,
  oneOf,
  optionsObject,
  positiveInteger,
  REGISTRATION,
  scopeOf,
  type OptionScope
} from './option-check.js'
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
   * Dot path to the array to stream (`items`, `data.rows`); numeric segments index arrays, and
   * `*` matches every key or index at its level (`data.*.rows`: the items of every matching
   * array, in document order). Without it, the top-level value: an array yields its elements,
   * anything else one batch `[value]`.
   */
  path?: string
  /**
   * Selection anywhere in a JSON body: every outermost value whose path the filter accepts is
   * an item, in document order (once a value is selected, nothing inside it is tested). A
   * RegExp is tested against the dotted path (`groups.0.members.3`; `''` is the top-level
   * value), a function gets the path's segments (keys as strings, indices as numbers).
   * Runs on stream-json's tokenizer, several times slower than `path`; not with `path` or
   * `entries`, and not for NDJSON or JSON sequences (415).
   */
  filter?: PathFilter
  /**
   * Stream the object at `path` (the top-level value without one) as `[key, value]` pairs, in
   * document order. A value there that is not an object is a 400 FST_NEXURE_PATH_NOT_OBJECT.
   * @default false
   */
  entries?: boolean
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
  batchSize: ENGINE_DEFAULTS.batchSize,
  bodyLimit: 1024 * 1024 * 1024,
  maxItemSize: ENGINE_DEFAULTS.maxItemSize,
  maxDepth: ENGINE_DEFAULTS.maxDepth,
  maxBufferSize: 64 * 1024,
  streamChunkSize: 16 * 1024,
  /** Both plugins': one unread-body policy (stream/unread-body.ts), one default. */
  drainLimit: 64 * 1024,
  bodyTimeout: 0,
  idleTimeout: 30_000,
  sampleInterval: 50,
  onInvalidItem: 'fail' as 'fail' | 'skip',
  maxSkipped: 1000
})

export const JSON_CONTENT_TYPES: readonly string[] = ['application/json']
/** `application/*+json` (RFC 6839 structured syntax suffix), e.g. application/vnd.api+json. */
export const JSON_SUFFIX_CONTENT_TYPE = /^application\/[^\s;/]+\+json(?:\s*;|$)/i
export const NDJSON_CONTENT_TYPES: readonly string[] = ['application/x-ndjson', 'application/jsonl', 'application/x-jsonlines']
/** JSON text sequences (RFC 7464): records that start with RS (0x1E). */
export const JSON_SEQ_CONTENT_TYPES: readonly string[] = ['application/json-seq']
export const RAW_CONTENT_TYPES: readonly string[] = ['application/octet-stream']

/** The options of one registration, normalized: every field present, frozen. */
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

const TRANSFORMS = 'functions (request, reply) => Transform'

const PLUGIN_KEYS: ReadonlySet<string> = new Set(['streamThreshold', 'batchSize', 'bodyLimit', 'maxItemSize', 'maxDepth', 'maxBufferSize',
  'streamChunkSize', 'pool', 'transforms', 'rawContentTypes', 'drainLimit', 'bodyTimeout', 'idleTimeout', 'underPressure', 'onInvalidItem', 'maxSkipped'])
const ROUTE_KEYS: ReadonlySet<string> = new Set(['streamThreshold', 'batchSize', 'bodyLimit', 'maxItemSize', 'maxDepth', 'itemSchema', 'transforms',
  'bodyTimeout', 'idleTimeout', 'onInvalidItem', 'maxSkipped'])
const PRESSURE_KEYS: ReadonlySet<string> = new Set(['maxEventLoopDelay', 'maxHeapUsedBytes', 'sampleInterval'])
const BATCHES_KEYS: ReadonlySet<string> = new Set(['size', 'path', 'entries', 'filter'])
const INVALID_ITEM_POLICIES = ['fail', 'skip'] as const

const ROUTE = scopeOf('config.streamBody.')
const PRESSURE = scopeOf('underPressure.')
// A request method's arguments are the application's mistake, found at request time.
const BATCHES: OptionScope = Object.freeze({
  label: (name: string) => name === '' ? 'request.batches(options)' : `request.batches({ ${name} })`,
  error: (label: string, why: string) => new FST_NEXURE_INVALID_ARGUMENT(label, why)
})

function pressureBounds (value: unknown): Readonly<PressureBounds> | null {
  if (value === undefined || value === false) return null
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(REGISTRATION, 'underPressure', `expected false or { maxEventLoopDelay, maxHeapUsedBytes, sampleInterval }, got ${describe(value)}`)
  }
  const bounds = optionsObject(PRESSURE, value, PRESSURE_KEYS)
  const result: PressureBounds = {}
  if (bounds.maxEventLoopDelay !== undefined) result.maxEventLoopDelay = positiveInteger(PRESSURE, 'maxEventLoopDelay', bounds.maxEventLoopDelay, 0)
  if (bounds.maxHeapUsedBytes !== undefined) result.maxHeapUsedBytes = positiveInteger(PRESSURE, 'maxHeapUsedBytes', bounds.maxHeapUsedBytes, 0)
  if (result.maxEventLoopDelay === undefined && result.maxHeapUsedBytes === undefined) {
    throw invalid(REGISTRATION, 'underPressure', 'needs maxEventLoopDelay or maxHeapUsedBytes')
  }
  result.sampleInterval = positiveInteger(PRESSURE, 'sampleInterval', bounds.sampleInterval, STREAM_BODY_DEFAULTS.sampleInterval)
  return Object.freeze(result)
}

function mediaTypes (value: unknown): readonly string[] {
  if (value === undefined) return RAW_CONTENT_TYPES
  if (!Array.isArray(value) || !value.every(t => typeof t === 'string' && /^[\w.+-]+\/[\w.+-]+$/.test(t))) {
    throw invalid(REGISTRATION, 'rawContentTypes', `expected an array of media types such as "application/octet-stream", got ${describe(value)}`)
  }
  return Object.freeze(value.map((t: string) => t.toLowerCase()))
}

function bufferPool (value: unknown, makePool: () => BufferPool): BufferPool | null {
  if (value === undefined) return makePool()
  if (value === false) return null
  if (typeof value === 'object' && value !== null && typeof (value as BufferPool).acquire === 'function') return value as BufferPool
  throw invalid(REGISTRATION, 'pool', `expected a BufferPool or false, got ${describe(value)}`)
}

/**
 * Normalizes the options given to `register(streamBody, options)` into a fresh frozen object.
 * The caller's object is never modified; an invalid value throws here, at registration.
 */
export function normalizeStreamBodyOptions (
  options: StreamBodyOptions | undefined,
  makePool: (slabSize: number) => BufferPool
): ResolvedStreamBodyOptions {
  const own = optionsObject(REGISTRATION, options, PLUGIN_KEYS, FASTIFY_REGISTER_KEYS)
  const d = STREAM_BODY_DEFAULTS
  const at = REGISTRATION
  const maxBufferSize = positiveInteger(at, 'maxBufferSize', own.maxBufferSize, d.maxBufferSize)
  return Object.freeze({
    streamThreshold: nonNegativeInteger(at, 'streamThreshold', own.streamThreshold, d.streamThreshold),
    batchSize: positiveInteger(at, 'batchSize', own.batchSize, d.batchSize),
    bodyLimit: positiveInteger(at, 'bodyLimit', own.bodyLimit, d.bodyLimit),
    maxItemSize: positiveInteger(at, 'maxItemSize', own.maxItemSize, d.maxItemSize),
    maxDepth: positiveInteger(at, 'maxDepth', own.maxDepth, d.maxDepth),
    maxBufferSize,
    streamChunkSize: positiveInteger(at, 'streamChunkSize', own.streamChunkSize, d.streamChunkSize),
    pool: bufferPool(own.pool, () => makePool(maxBufferSize)),
    transforms: functionList<TransformFactory>(at, 'transforms', own.transforms, Object.freeze([]), TRANSFORMS),
    rawContentTypes: mediaTypes(own.rawContentTypes),
    drainLimit: nonNegativeInteger(at, 'drainLimit', own.drainLimit, d.drainLimit),
    bodyTimeout: nonNegativeInteger(at, 'bodyTimeout', own.bodyTimeout, d.bodyTimeout),
    idleTimeout: nonNegativeInteger(at, 'idleTimeout', own.idleTimeout, d.idleTimeout),
    underPressure: pressureBounds(own.underPressure),
    onInvalidItem: oneOf(at, 'onInvalidItem', own.onInvalidItem, INVALID_ITEM_POLICIES, d.onInvalidItem),
    maxSkipped: nonNegativeInteger(at, 'maxSkipped', own.maxSkipped, d.maxSkipped)
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
  routeBodyLimit: number | undefined
): ResolvedRouteOptions {
  const route = optionsObject(ROUTE, config ?? undefined, ROUTE_KEYS)
  const itemSchema = route.itemSchema ?? null
  if (itemSchema !== null && (typeof itemSchema !== 'object' || Array.isArray(itemSchema))) {
    throw invalid(ROUTE, 'itemSchema', `expected a JSON Schema object, got ${describe(itemSchema)}`)
  }
  const explicitLimit = route.bodyLimit ?? routeBodyLimit
  return Object.freeze({
    streamThreshold: nonNegativeInteger(ROUTE, 'streamThreshold', route.streamThreshold, plugin.streamThreshold),
    batchSize: positiveInteger(ROUTE, 'batchSize', route.batchSize, plugin.batchSize),
    bodyLimit: positiveInteger(ROUTE, 'bodyLimit', explicitLimit, plugin.bodyLimit),
    maxItemSize: positiveInteger(ROUTE, 'maxItemSize', route.maxItemSize, plugin.maxItemSize),
    maxDepth: positiveInteger(ROUTE, 'maxDepth', route.maxDepth, plugin.maxDepth),
    transforms: functionList<TransformFactory>(ROUTE, 'transforms', route.transforms, plugin.transforms, TRANSFORMS),
    itemSchema: itemSchema as Record<string, unknown> | null,
    bodyTimeout: nonNegativeInteger(ROUTE, 'bodyTimeout', route.bodyTimeout, plugin.bodyTimeout),
    idleTimeout: nonNegativeInteger(ROUTE, 'idleTimeout', route.idleTimeout, plugin.idleTimeout),
    onInvalidItem: oneOf(ROUTE, 'onInvalidItem', route.onInvalidItem, INVALID_ITEM_POLICIES, plugin.onInvalidItem),
    maxSkipped: nonNegativeInteger(ROUTE, 'maxSkipped', route.maxSkipped, plugin.maxSkipped)
  })
}

/** `request.batches(options)`, checked. */
export interface CheckedBatchesOptions {
  /** 0 for the route's `batchSize`. */
  size: number
  path: PathSegment[]
  pathText: string | undefined
  entries: boolean
  /** null without one. */
  filter: PathFilter | null
}

/**
 * `request.batches(options)`, checked when called, before the body is claimed. Unknown keys and
 * wrong types are refused, and so is `filter` with `path` or `entries`: a filter already sees
 * whole paths (`/^data\.rows\.\d+$/` selects what `path: 'data.rows'` streams) and selects
 * values, not pairs.
 */
export function checkBatchesOptions (options: unknown): CheckedBatchesOptions {
  const own = optionsObject(BATCHES, options, BATCHES_KEYS) as BatchesOptions
  const filter = own.filter === undefined ? null : filterOption(BATCHES, 'filter', own.filter)
  if (filter !== null && own.path !== undefined) {
    throw invalid(BATCHES, 'filter', 'cannot be combined with path (a filter sees whole paths: match the path in it)')
  }
  if (filter !== null && own.entries === true) {
    throw invalid(BATCHES, 'filter', 'cannot be combined with entries (a filter selects values: match the keys\' paths in it)')
  }
  return {
    size: positiveInteger(BATCHES, 'size', own.size, 0),
    path: pathOption(BATCHES, 'path', own.path),
    pathText: own.path,
    entries: boolean(BATCHES, 'entries', own.entries, false),
    filter
  }
}
