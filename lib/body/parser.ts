import type { FastifyRequest } from 'fastify'
import type { Readable } from 'node:stream'
import {
  FST_NEXURE_BODY_TOO_LARGE,
  FST_NEXURE_UNSUPPORTED_CHARSET
} from '../errors.js'
import { parseJsonBody, parseNdjsonBody } from '../core/json-text.js'
import { JsonArrayScanner } from '../core/array-scanner.js'
import { NdjsonSplitter } from '../core/ndjson-splitter.js'
import { BodySource } from '../stream/body-source.js'
import { parseContentEncoding, type ContentCoding } from '../stream/decode.js'
import type { PressureMonitor } from '../stream/pressure.js'
import { kBodyState, kReply, kRouteOptions } from '../symbols.js'
import { invalidOption, resolveRouteOptions, type ResolvedRouteOptions, type ResolvedStreamBodyOptions } from '../options.js'
import type { BodyKind, BodyState } from './state.js'
import { closeAfterAnswer } from './lifecycle.js'

type Done = (error: Error | null, body?: unknown) => void

export interface PoisoningPolicy {
  readonly protoAction: 'error' | 'remove' | 'ignore'
  readonly constructorAction: 'error' | 'remove' | 'ignore'
}

const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)"?/i

function checkCharset (contentType: string | undefined): void {
  const charset = contentType === undefined ? undefined : CHARSET.exec(contentType)?.[1]
  if (charset !== undefined && !/^utf-?8$/i.test(charset)) throw new FST_NEXURE_UNSUPPORTED_CHARSET(charset)
}

function contentLengthOf (request: FastifyRequest): number | undefined {
  const header = request.headers['content-length']
  if (header === undefined || request.headers['transfer-encoding'] !== undefined) return undefined
  const length = Number(header)
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined
}

/** The route's resolved options, or the plugin's for a route registered before the plugin. */
export function routeOptionsOf (request: FastifyRequest, plugin: ResolvedStreamBodyOptions): ResolvedRouteOptions {
  return request.routeOptions.config[kRouteOptions] ??
    resolveRouteOptions(plugin, undefined, undefined, invalidOption)
}

function openSource (request: FastifyRequest, payload: Readable, state: BodyState, codings: ContentCoding[], monitor: PressureMonitor | null): BodySource {
  return new BodySource(payload, {
    codings,
    bodyLimit: state.route.bodyLimit,
    bodyTimeout: state.route.bodyTimeout,
    idleTimeout: state.route.idleTimeout,
    monitor,
    highWaterMark: state.plugin.streamChunkSize,
    makeTransforms: () => state.route.transforms.map(factory => factory(request, state.reply!))
  })
}

function parseWhole (kind: BodyKind, body: Buffer, policy: PoisoningPolicy, maxItemSize: number, maxDepth: number): unknown {
  // A body smaller than maxItemSize cannot hold a larger item, so the usual case is one parse
  // call. Otherwise the scanner checks item sizes too, so that a small body answers exactly as
  // the same body streamed would.
  if (kind !== 'raw' && body.length > maxItemSize) {
    const check = { ...policy, maxItemSize, maxDepth, batchSize: Number.MAX_SAFE_INTEGER }
    const scanner = kind === 'json' ? new JsonArrayScanner(check, () => {}) : new NdjsonSplitter(check, () => {})
    scanner.write(body)
    scanner.end()
  }
  switch (kind) {
    case 'json': return parseJsonBody(body, { ...policy, maxDepth })
    case 'ndjson': return parseNdjsonBody(body, { ...policy, maxDepth })
    case 'raw': return body
  }
}

/**
 * Refused before a byte of the body was read: the client is still sending it, so the answer
 * closes the connection (else the next request on it would be parsed out of the rest). Fastify
 * itself adds `connection: close` to parser errors only since fastify#6262 (a later 5.x), and
 * nexure supports the whole 5.x line.
 */
function refuseUnread (request: FastifyRequest, error: Error, done: Done): void {
  const reply = request[kReply]
  if (reply != null) closeAfterAnswer(request, reply)
  done(error)
}

/**
 * A Fastify content-type parser that reads a body only when it is small.
 *
 * A body whose Content-Length is at most `streamThreshold` is read, decoded and parsed once, so
 * `request.body` and `schema.body` work as usual. Anything larger, or chunked, is left on the
 * socket: `done()` is called at once and the handler pulls the body through `request.batches()`
 * or `request.bodyStream()`, which is the only way to give it backpressure. A small body that
 * decompresses past the threshold is streamed too, from where reading stopped.
 */
export function createParser (kind: BodyKind, plugin: ResolvedStreamBodyOptions, policy: PoisoningPolicy, monitor: PressureMonitor | null) {
  return function nexureParser (request: FastifyRequest, payload: Readable, done: Done): void {
    const route = routeOptionsOf(request, plugin)
    let codings
    try {
      if (kind !== 'raw') checkCharset(request.headers['content-type'])
      codings = parseContentEncoding(request.headers['content-encoding'])
    } catch (error) {
      refuseUnread(request, error as Error, done)
      return
    }
    const contentLength = contentLengthOf(request)
    if (contentLength !== undefined && contentLength > route.bodyLimit) {
      refuseUnread(request, new FST_NEXURE_BODY_TOO_LARGE(`content-length ${contentLength}`, route.bodyLimit), done)
      return
    }
    const state: BodyState = {
      kind, plugin, route, contentLength, reply: request[kReply] ?? null,
      buffer: null, source: null, consumedBy: null, failed: false
    }
    request[kBodyState] = state
    const source = openSource(request, payload, state, codings, monitor)
    state.source = source
    if (contentLength === undefined || contentLength > route.streamThreshold) {
      done(null, undefined)
      return
    }
    source.readUpTo(route.streamThreshold).then(buffer => {
      if (buffer === null) {
        done(null, undefined)
        return
      }
      state.source = null
      source.destroy()
      state.buffer = buffer
      let body
      try {
        body = parseWhole(kind, buffer, policy, route.maxItemSize, route.maxDepth)
      } catch (error) {
        state.failed = true
        done(error as Error)
        return
      }
      done(null, body)
    }, (error: Error) => {
      state.failed = true
      done(error)
    })
  }
}
