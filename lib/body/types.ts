import type { Readable } from 'node:stream'
import type { BatchesOptions, StreamBodyRouteOptions, StreamStats } from '../options.js'

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * With `entries: true`: the object at `path` (the top-level value without one) as
     * `[key, value]` pairs in document order, `T` being the type of the values.
     * @throws FST_NEXURE_BODY_CONSUMED when the body was already taken
     */
    batches<T = unknown>(options: BatchesOptions & { entries: true }): AsyncIterableIterator<Array<[string, T]>>
    /**
     * The body's items in batches (arrays of at most `size` parsed items), pulled at the
     * handler's pace. For a JSON body: the elements of the top-level array, or of the array at
     * `path` (of every array a `*` path matches, in document order); a top-level value that is
     * not an array is one batch `[value]`. For NDJSON: one item per line. Can be called once per
     * request.
     * @throws FST_NEXURE_BODY_CONSUMED when the body was already taken
     */
    batches<T = unknown>(options?: BatchesOptions): AsyncIterableIterator<T[]>
    /**
     * The body's decoded, limited, transformed bytes as a Readable. Can be called once per
     * request, and not together with `batches()`.
     */
    bodyStream(): Readable
    /** What happened to a streamed body, once it has been read; null before. */
    streamStats: StreamStats | null
  }
  interface FastifyContextConfig {
    /** nexure streamBody options for this route; they override the plugin's. */
    streamBody?: StreamBodyRouteOptions
  }
}
