import type { FastifyReply, FastifyRequest } from 'fastify'
import type { BodySource } from '../stream/body-source.js'
import type { ResolvedRouteOptions, ResolvedStreamBodyOptions } from './resolve-options.js'
import { kBodyState, kReply, kRouteOptions } from '../symbols.js'
import type { SkipLog } from './skipping.js'

export type BodyKind = 'json' | 'ndjson' | 'json-seq' | 'raw'

/** Reads a body off the socket: a BodySource, or the small-body reader. */
export interface BodyReader {
  readonly bytesReceived: number
  /** True once every byte of the body was read. */
  readonly ended: boolean
  /** Stops reading and frees what reading holds. Idempotent. */
  destroy: () => void
}

/** What nexure knows about one request's body; hangs on `request[kBodyState]`. */
export interface BodyState {
  readonly kind: BodyKind
  readonly plugin: ResolvedStreamBodyOptions
  readonly route: ResolvedRouteOptions
  readonly contentLength: number | undefined
  /** The reply of this request, for user transform factories. */
  reply: FastifyReply | null
  /** The decoded bytes of a body read at once (small bodies), as they came, kept for bodyStream(). */
  chunks: readonly Buffer[] | null
  /** The stream of a body left on the socket; null once a small body was read whole. */
  source: BodySource | null
  /**
   * What is reading the body off the socket now, for the unread-body policy: the BodySource of
   * a streamed body, or the small-body reader until it has read everything; null once a small
   * body was read whole.
   */
  reader: BodyReader | null
  /** Which call took the body: 'request.batches()' or 'request.bodyStream()'. */
  consumedBy: string | null
  /** A read or parse error ended the body early. */
  failed: boolean
  /** What a small NDJSON or JSON-sequence body left out when parsed (`onInvalidItem: 'skip'`). */
  skipped: SkipLog | null
}

declare module 'fastify' {
  interface FastifyRequest {
    [kBodyState]?: BodyState | null
    [kReply]?: FastifyReply | null
  }
  interface FastifyContextConfig {
    [kRouteOptions]?: ResolvedRouteOptions
  }
}

export function bodyStateOf (request: FastifyRequest): BodyState | undefined {
  return request[kBodyState] ?? undefined
}

/** True while part of the body (streamed, or a small one still arriving) is unread. */
export function hasUnreadBody (state: BodyState): boolean {
  return state.reader !== null && !state.reader.ended
}
