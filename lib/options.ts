import type { Transform } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { BufferPool } from './core/buffer-pool.js'

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
  /**
   * JSON Schema every item must satisfy, compiled once with the route's validator compiler.
   * A failing item is a 400 `FST_NEXURE_INVALID_ITEM` naming its index.
   */
  itemSchema?: Record<string, unknown>
  /** Transform factories for this route; they replace the plugin's. */
  transforms?: TransformFactory[]
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
}
