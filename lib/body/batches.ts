import { Readable } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import { FST_NEXURE_BODY_CONSUMED, FST_NEXURE_UNSUPPORTED_MEDIA_TYPE } from '../errors.js'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { JsonArrayScanner } from '../core/array-scanner.js'
import { FilterEngine } from '../core/filter-engine.js'
import { NdjsonSplitter } from '../core/ndjson-splitter.js'
import { hasWildcard, valueAt } from '../core/path.js'
import type { PathFilter, SecureParseOptions } from '../core/engine-options.js'
import type { BatchesOptions, StreamStats } from '../options.js'
import { checkBatchesOptions, type CheckedBatchesOptions } from './resolve-options.js'
import type { BodySource } from '../stream/body-source.js'
import { bodyStateOf, type BodyState } from './state.js'
import { parseNdjsonBody, scanJsonItems } from '../core/whole-body.js'
import { SkipLog } from './skipping.js'
import { acceptWith, Delivery, itemValidator } from './delivery.js'

const JSON_EXPECTED = 'a JSON, NDJSON or JSON-sequence body (application/json, application/x-ndjson, application/json-seq)'

function claim (request: FastifyRequest, call: string, expected: string): BodyState {
  const state = bodyStateOf(request)
  if (state === undefined) {
    throw new FST_NEXURE_UNSUPPORTED_MEDIA_TYPE(request.headers['content-type'] ?? 'none', expected)
  }
  if (state.consumedBy !== null) throw new FST_NEXURE_BODY_CONSUMED(call, state.consumedBy)
  state.consumedBy = call
  return state
}

function isRecords (state: BodyState): boolean {
  return state.kind === 'ndjson' || state.kind === 'json-seq'
}

/**
 * The items `batches()` yields from a JSON body that was parsed whole. A plain path is walked on
 * the parsed value; where that finds nothing, and for entries and `*` (which need the document
 * order and the duplicate keys a parsed object has lost), the array scanner walks the body's
 * bytes, so the items and any error (code, message, offset) are the streamed body's.
 */
function pick (request: FastifyRequest, state: BodyState, policy: SecureParseOptions, call: CheckedBatchesOptions): unknown[] {
  const body = request.body
  if (call.path.length === 0 && !call.entries) return Array.isArray(body) ? body : [body]
  if (!call.entries && !hasWildcard(call.path)) {
    const value = valueAt(body, call.path)
    if (Array.isArray(value)) return value
  }
  const { maxItemSize, maxDepth } = state.route
  return scanJsonItems(state.chunks!, { ...policy, maxItemSize, maxDepth, pool: state.plugin.pool, path: call.pathText, entries: call.entries })
}

const NOTHING_SKIPPED = new SkipLog(0)

function finishStats (request: FastifyRequest, state: BodyState, source: BodySource, items: number, batches: number, poolBefore: { hits: number, misses: number }, log = NOTHING_SKIPPED): void {
  const pool = state.plugin.pool?.stats
  const stats: StreamStats = {
    bytesReceived: source.bytesReceived,
    bytesDecoded: source.bytesDecoded,
    items,
    batches,
    durationMs: Math.round(source.durationMs * 1000) / 1000,
    poolHits: pool === undefined ? 0 : pool.hits - poolBefore.hits,
    poolMisses: pool === undefined ? 0 : pool.misses - poolBefore.misses,
    throttledMs: Math.round(source.throttledMs),
    skipped: log.count,
    skippedItems: log.items.slice()
  }
  request.streamStats = stats
  request.log.debug({ streamStats: stats }, 'nexure: streamed body done')
}

/** `request.streamStats` of a body read whole under `onInvalidItem: 'skip'`, which reports what it left out. */
function wholeBodyStats (request: FastifyRequest, state: BodyState, delivery: Delivery, log: SkipLog): void {
  const length = state.chunks?.reduce((n, chunk) => n + chunk.length, 0) ?? 0
  request.streamStats = {
    bytesReceived: state.contentLength ?? length, bytesDecoded: length, items: delivery.items, batches: delivery.batches,
    durationMs: 0, poolHits: 0, poolMisses: 0, throttledMs: 0, skipped: log.count, skippedItems: log.items.slice()
  }
}

async function * bufferedBatches<T> (request: FastifyRequest, state: BodyState, policy: SecureParseOptions, size: number, call: CheckedBatchesOptions): AsyncGenerator<T[], void, undefined> {
  const validate = itemValidator(request, state)
  const skipping = state.route.onInvalidItem === 'skip'
  const records = isRecords(state)
  let items: unknown[]
  let log = state.skipped ?? new SkipLog(state.route.maxSkipped)
  if (records && skipping && validate !== null) {
    // The records again, with itemSchema, so that a refused one is located by line and offset
    // as when streamed (the parse already left out the ones that are not JSON).
    log = new SkipLog(state.route.maxSkipped)
    items = parseNdjsonBody(state.chunks!, {
      ...policy,
      maxDepth: state.route.maxDepth,
      format: state.kind as 'ndjson' | 'json-seq',
      skip: (error, fault) => log.add(error, fault.index, fault.line, fault.offset),
      accept: acceptWith(validate)
    })
  } else {
    items = records ? request.body as unknown[] : pick(request, state, policy, call)
  }
  const delivery = new Delivery(validate, skipping ? log : null, records && skipping)
  try {
    for (let i = 0; i < items.length; i += size) yield * delivery.drain([items.slice(i, i + size)]) as Generator<T[]>
  } finally {
    if (skipping) wholeBodyStats(request, state, delivery, log)
  }
}

/**
 * `batches({ filter })` on a body read whole: the same FilterEngine over its bytes, so that a
 * small body yields exactly what it would streamed (document order, a key given twice refused,
 * the same limits), which a walk of `request.body` could not promise (JavaScript orders
 * integer-like keys first; JSON.parse keeps the last of duplicate keys). The engine runs at
 * stream-json's pace, so the event loop gets a turn between pieces of `FILTER_PIECE` bytes, as
 * a streamed body's does (BodySource's YIELD_EVERY). Its batches are cut by count only, as every
 * body read whole: `batchBytes` bounds what a stream holds, and this body is held already.
 */
async function * filteredBatches<T> (request: FastifyRequest, state: BodyState, policy: SecureParseOptions, size: number, filter: PathFilter): AsyncGenerator<T[], void, undefined> {
  const skipping = state.route.onInvalidItem === 'skip'
  const log = new SkipLog(state.route.maxSkipped)
  const delivery = new Delivery(itemValidator(request, state), skipping ? log : null, false)
  const ready: unknown[][] = []
  const { maxItemSize, maxDepth } = state.route
  const engine = new FilterEngine({ batchSize: size, batchBytes: Infinity, maxItemSize, maxDepth, pool: state.plugin.pool, ...policy, filter }, items => ready.push(items))
  try {
    let fed = 0
    for (const chunk of state.chunks ?? []) {
      for (let at = 0; at < chunk.length; at += FILTER_PIECE) {
        if (fed > 0) await nextTurn()
        engine.write(chunk.subarray(at, at + FILTER_PIECE))
        fed += FILTER_PIECE
        yield * delivery.drain(ready) as Generator<T[]>
      }
    }
    engine.end()
    yield * delivery.drain(ready) as Generator<T[]>
  } finally {
    engine.destroy()
    if (skipping) wholeBodyStats(request, state, delivery, log)
  }
}

const FILTER_PIECE = 32 * 1024

interface Engine {
  write: (chunk: Uint8Array) => void
  end: () => void
  destroy: () => void
}

/**
 * Writes the body's next chunk to the engine; false at the end of the body. The chunk is not
 * held past the write (a `for await` binding would keep it alive while a batch is out).
 */
async function feed (chunks: AsyncIterator<Buffer>, engine: Engine): Promise<boolean> {
  const next = await chunks.next()
  if (next.done === true) return false
  engine.write(next.value)
  return true
}

async function * streamedBatches<T> (request: FastifyRequest, state: BodyState, source: BodySource, policy: SecureParseOptions, size: number, call: CheckedBatchesOptions): AsyncGenerator<T[], void, undefined> {
  const validate = itemValidator(request, state)
  const skipping = state.route.onInvalidItem === 'skip'
  const log = skipping ? new SkipLog(state.route.maxSkipped) : NOTHING_SKIPPED
  const records = isRecords(state)
  const delivery = new Delivery(validate, skipping ? log : null, records && skipping)
  // The engines cut the batches (core/batcher.ts): `size` items each, short only where the
  // streamed array or entries object ends, or the body does.
  const ready: unknown[][] = []
  const onItems = (items: unknown[]): void => { ready.push(items) }
  const common = { batchSize: size, batchBytes: state.route.batchBytes, maxItemSize: state.route.maxItemSize, maxDepth: state.route.maxDepth, pool: state.plugin.pool, ...policy }
  const engine: Engine = records
    ? new NdjsonSplitter({
      ...common,
      format: state.kind as 'ndjson' | 'json-seq',
      // Records are checked by the splitter when skipping, so a refused one has its line.
      skip: skipping ? (error, fault) => log.add(error, fault.index, fault.line, fault.offset) : null,
      accept: skipping ? acceptWith(validate) : null
    }, onItems)
    : call.filter !== null
      ? new FilterEngine({ ...common, filter: call.filter }, onItems)
      : new JsonArrayScanner({ ...common, path: call.pathText, entries: call.entries }, onItems)
  const poolBefore = state.plugin.pool?.stats ?? { hits: 0, misses: 0 }
  const chunks = source.chunks()
  try {
    while (await feed(chunks, engine)) yield * delivery.drain(ready) as Generator<T[]>
    engine.end()
    yield * delivery.drain(ready) as Generator<T[]>
  } catch (error) {
    state.failed = true
    throw source.classify(error)
  } finally {
    engine.destroy()
    if (!source.ended) source.destroy()
    finishStats(request, state, source, delivery.items, delivery.batches, poolBefore, log)
    // What `for await` would do on leaving early: the chunks generator is finished, not left suspended.
    await chunks.return(undefined)
  }
}

export function createBatches (policy: SecureParseOptions) {
  // The call's own arguments are the application's (a 500 if wrong, whatever the request); the
  // body's content type is the client's choice (a 415 if it does not fit the call).
  return function batches<T = unknown> (this: FastifyRequest, options?: BatchesOptions): AsyncIterableIterator<T[]> {
    const call = checkBatchesOptions(options)
    const { pathText } = call
    const state = claim(this, 'request.batches()', JSON_EXPECTED)
    const received = this.headers['content-type'] ?? 'none'
    if (state.kind === 'raw') {
      state.consumedBy = null
      throw new FST_NEXURE_UNSUPPORTED_MEDIA_TYPE(received, JSON_EXPECTED)
    }
    if ((pathText !== undefined || call.entries) && isRecords(state)) {
      state.consumedBy = null
      const what = call.entries ? `an object at ${pathText === undefined ? 'the top level' : `"${pathText}"`}` : `an array at "${pathText}"`
      const asked = call.entries ? `batches({ ${pathText === undefined ? '' : `path: '${pathText}', `}entries: true })` : `batches({ path: '${pathText}' })`
      throw new FST_NEXURE_UNSUPPORTED_MEDIA_TYPE(received, `a JSON body (application/json) with ${what} (this route calls ${asked}; NDJSON and JSON sequences have no paths)`)
    }
    if (call.filter !== null && isRecords(state)) {
      state.consumedBy = null
      throw new FST_NEXURE_UNSUPPORTED_MEDIA_TYPE(received, 'a JSON body (application/json) (this route calls batches({ filter }); NDJSON and JSON sequences have no paths)')
    }
    const size = call.size === 0 ? state.route.batchSize : call.size
    const source = state.source
    if (source === null) {
      return call.filter === null ? bufferedBatches<T>(this, state, policy, size, call) : filteredBatches<T>(this, state, policy, size, call.filter)
    }
    return streamedBatches<T>(this, state, source, policy, size, call)
  }
}

/** `request.bodyStream()`: the decoded, limited, transformed bytes as a Readable. */
export function bodyStream (this: FastifyRequest): Readable {
  const state = claim(this, 'request.bodyStream()', 'a body parsed by nexure')
  const source = state.source
  if (source === null) return Readable.from(state.chunks ?? [], { objectMode: false })
  const request = this
  async function * bytes (): AsyncGenerator<Buffer> {
    try {
      yield * source!.chunks()
    } catch (error) {
      state.failed = true
      throw error
    } finally {
      if (!source!.ended) source!.destroy()
      finishStats(request, state, source!, 0, 0, { hits: 0, misses: 0 })
    }
  }
  return Readable.from(bytes(), { objectMode: false, highWaterMark: state.plugin.streamChunkSize })
}
