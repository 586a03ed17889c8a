import type { FastifyRequest } from 'fastify'
import { Readable } from 'node:stream'
import {
  FST_NEXURE_BODY_TOO_LARGE,
  FST_NEXURE_INVALID_ENCODING,
  FST_NEXURE_UNSUPPORTED_CHARSET
} from '../errors.js'
import { parseJsonWhole, parseNdjsonBody, parseNdjsonWhole } from '../core/whole-body.js'
import { JsonArrayScanner } from '../core/array-scanner.js'
import { BodySource } from '../stream/body-source.js'
import { DECODE_NOW_UP_TO, decodeWhole, decodeWholeNow, parseContentEncoding, type ContentCoding } from '../stream/decode.js'
import type { PressureMonitor } from '../stream/pressure.js'
import { kBodyState, kReply, kRouteOptions } from '../symbols.js'
import type { SecureParseOptions } from '../core/engine-options.js'
import { resolveRouteOptions, type ResolvedRouteOptions, type ResolvedStreamBodyOptions } from './resolve-options.js'
import { readSmallBody } from './small-body.js'
import { SkipLog } from './skipping.js'
import type { BodyKind, BodyReader, BodyState } from './state.js'

type Done = (error: Error | null, body?: unknown) => void

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

function parseWhole (state: BodyState, chunks: readonly Buffer[], length: number, policy: SecureParseOptions): unknown {
  const { maxItemSize, maxDepth } = state.route
  switch (state.kind) {
    case 'json':
      // A body smaller than maxItemSize cannot hold a larger item, so the usual case is one
      // parse call. Otherwise the scanner checks item sizes too, so that a small body answers
      // exactly as the same body streamed would.
      if (length > maxItemSize) {
        const scanner = new JsonArrayScanner({ ...policy, maxItemSize, maxDepth, batchSize: Number.MAX_SAFE_INTEGER, batchBytes: Infinity }, () => {})
        for (const chunk of chunks) scanner.write(chunk)
        scanner.end()
      }
      return parseJsonWhole(chunks, length, policy, maxDepth)
    case 'ndjson':
    case 'json-seq': {
      // The usual NDJSON body: lines cut from its text, no splitter built.
      if (state.kind === 'ndjson' && state.route.onInvalidItem !== 'skip' && length <= maxItemSize) return parseNdjsonWhole(chunks, length, policy, maxDepth)
      // Otherwise one pass of the splitter over the records, which checks their sizes as it goes.
      const log = state.route.onInvalidItem === 'skip' ? (state.skipped = new SkipLog(state.route.maxSkipped)) : null
      return parseNdjsonBody(chunks, {
        ...policy,
        maxDepth,
        maxItemSize: length > maxItemSize ? maxItemSize : Infinity,
        format: state.kind,
        skip: log === null ? null : (error, fault) => log.add(error, fault.index, fault.line, fault.offset)
      })
    }
    case 'raw': return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length)
  }
}

/** The reader of a body refused before a byte of it was read. */
const UNREAD: BodyReader = Object.freeze({ bytesReceived: 0, ended: false, destroy () {} })

/**
 * Refused before a byte of the body was read: the client is still sending it, so the answer
 * must close the connection (else the next request on it would be parsed out of the rest).
 * Fastify itself adds `connection: close` to parser errors only since fastify#6262 (a later
 * 5.x), and nexure supports the whole 5.x line: the body is recorded as unread and failed, and
 * the route's onSend hook closes the connection after the answer, as for any unread body.
 */
function refuseUnread (request: FastifyRequest, kind: BodyKind, plugin: ResolvedStreamBodyOptions, route: ResolvedRouteOptions, error: Error, done: Done): void {
  request[kBodyState] = {
    kind, plugin, route, contentLength: contentLengthOf(request), reply: null,
    chunks: null, source: null, reader: UNREAD, consumedBy: null, failed: true, skipped: null
  }
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
 *
 * Small bodies are most of an API's traffic. One that needs no decoding, no user transform and
 * no throttling is read straight off the payload (`readSmallBody`), as Fastify's own parser
 * reads it; the rest go through the same BodySource as streamed bodies.
 */
export function createParser (kind: BodyKind, plugin: ResolvedStreamBodyOptions, policy: SecureParseOptions, monitor: PressureMonitor | null) {
  // For a route registered before the plugin, which onRoute did not see: resolved once, here.
  const defaults = resolveRouteOptions(plugin, undefined, undefined)

  function finish (state: BodyState, chunks: readonly Buffer[], length: number, done: Done): void {
    state.chunks = chunks
    let body
    try {
      body = parseWhole(state, chunks, length, policy)
    } catch (error) {
      state.failed = true
      done(error as Error)
      return
    }
    done(null, body)
  }

  /** The body through a BodySource: read at once when small (and it stays so), else streamed. */
  function readThroughSource (request: FastifyRequest, payload: Readable, state: BodyState, codings: ContentCoding[], small: boolean, done: Done): void {
    const source = openSource(request, payload, state, codings, monitor)
    state.source = state.reader = source
    if (!small) {
      done(null, undefined)
      return
    }
    source.readUpTo(state.route.streamThreshold).then(buffer => {
      if (buffer === null) {
        done(null, undefined)
        return
      }
      state.source = state.reader = null
      source.destroy()
      finish(state, [buffer], buffer.length, done)
    }, (error: Error) => {
      state.failed = true
      done(error)
    })
  }

  return function nexureParser (request: FastifyRequest, payload: Readable, done: Done): void {
    const route = request.routeOptions.config[kRouteOptions] ?? defaults
    let codings
    try {
      if (kind !== 'raw') checkCharset(request.headers['content-type'])
      codings = parseContentEncoding(request.headers['content-encoding'])
    } catch (error) {
      refuseUnread(request, kind, plugin, route, error as Error, done)
      return
    }
    const contentLength = contentLengthOf(request)
    if (contentLength !== undefined && contentLength > route.bodyLimit) {
      refuseUnread(request, kind, plugin, route, new FST_NEXURE_BODY_TOO_LARGE(`content-length ${contentLength}`, route.bodyLimit), done)
      return
    }
    const state: BodyState = {
      kind, plugin, route, contentLength, reply: request[kReply] ?? null,
      chunks: null, source: null, reader: null, consumedBy: null, failed: false, skipped: null
    }
    request[kBodyState] = state
    const small = contentLength !== undefined && contentLength <= route.streamThreshold
    if (small && codings.length <= 1 && route.transforms.length === 0 && monitor === null) {
      state.reader = readSmallBody(payload, route, (error, chunks, length) => {
        if (error !== null) {
          state.failed = true
          done(error)
          return
        }
        state.reader = null
        const coding = codings[0]
        if (coding === undefined) {
          finish(state, chunks, length, done)
          return
        }
        // One call decodes it, up to what a small body may inflate to; past that (or past
        // bodyLimit) the streaming path takes the same bytes and answers as for any body.
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length)
        const maxOutputLength = Math.min(route.streamThreshold, route.bodyLimit) + 1
        const take = (decoded: Buffer | null): void => {
          if (decoded !== null) finish(state, [decoded], decoded.length, done)
          else readThroughSource(request, Readable.from([body]), state, codings, true, done)
        }
        const failed = (error: Error): void => {
          state.failed = true
          done(new FST_NEXURE_INVALID_ENCODING(coding, error.message))
        }
        if (coding === 'br' || maxOutputLength > DECODE_NOW_UP_TO) {
          decodeWhole(coding, body, maxOutputLength).then(take, failed)
          return
        }
        let decoded
        try {
          decoded = decodeWholeNow(coding, body, maxOutputLength)
        } catch (error) {
          failed(error as Error)
          return
        }
        take(decoded)
      })
      return
    }
    readThroughSource(request, payload, state, codings, small, done)
  }
}
