// The options of `streamBody` as users write them (registration, route config, one
// `request.batches()` call), what a streamed body reports, and every default, once. Checking
// and resolving them is body/resolve-options.ts's.

import type { Transform } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { BufferPool } from './core/buffer-pool.js'
import { ENGINE_DEFAULTS, type PathFilter } from './core/engine-options.js'
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
   * The most items per batch yielded by `request.batches()` (a streamed body's batch also ends
   * at `batchBytes`).
   * @default 1000
   */
  batchSize?: number
  /**
   * A streamed body's batch is handed on once its items took this many bytes of the body,
   * even with fewer than `batchSize` items, so that what a batch holds follows the body, not
   * the size of its items (it passes the bound by at most its last item, or 32 KiB of
   * elements parsed at once). At the defaults, a batch has `batchSize` items unless they
   * average over 1 KiB. `Infinity` to cut by count only. Lower it (64 KiB, say) when many large
   * bodies stream at once: a batch being filled lives while the others are parsed, so the
   * server holds about one per stream (`npm run bench:concurrency -- --batch-bytes 64KB`).
   * A body read whole (up to `streamThreshold`) is cut by count only.
   * @default 1048576 (1 MiB)
   */
  batchBytes?: number
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
  /** @see StreamBodyOptions.batchBytes */
  batchBytes?: number
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
  batchBytes: ENGINE_DEFAULTS.batchBytes,
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
