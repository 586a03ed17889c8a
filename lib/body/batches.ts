import { Readable } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import {
  FST_NEXURE_BODY_CONSUMED,
  FST_NEXURE_INVALID_ITEM,
  FST_NEXURE_UNSUPPORTED_MEDIA_TYPE
} from '../errors.js'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { JsonArrayScanner } from '../core/array-scanner.js'
import { FilterEngine } from '../core/filter-engine.js'
import { NdjsonSplitter } from '../core/ndjson-splitter.js'
import { hasWildcard, valueAt } from '../core/path.js'
import type { PathFilter, SecureParseOptions } from '../core/engine-options.js'
import { checkBatchesOptions, type BatchesOptions, type CheckedBatchesOptions, type StreamStats } from '../options.js'
import type { BodySource } from '../stream/body-source.js'
import { bodyStateOf, type BodyState } from './state.js'
import { parseNdjsonBody, scanJsonItems } from '../core/whole-body.js'
import { SkipLog } from './skipping.js'

type Validate = ((item: unknown) => boolean) & { errors?: Array<{ instancePath?: string, message?: string }> | null }

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

function itemValidator (request: FastifyRequest, state: BodyState): Validate | null {
  const schema = state.route.itemSchema
  return schema === null ? null : request.compileValidationSchema(schema) as Validate
}

function invalidItem (validate: Validate, index: number): Error {
  const detail = (validate.errors ?? []).map(e => `${e.instancePath === '' || e.instancePath === undefined ? 'item' : e.instancePath} ${e.message ?? 'is invalid'}`).join('; ')
  return new FST_NEXURE_INVALID_ITEM(index, detail === '' ? 'does not match itemSchema' : detail)
}

function checkItems (validate: Validate | null, batch: unknown[], firstIndex: number): void {
  if (validate === null) return
  for (let i = 0; i < batch.length; i++) {
    if (!validate(batch[i])) throw invalidItem(validate, firstIndex + i)
  }
}

/** Under `onInvalidItem: 'skip'`: the items of `batch` that pass, the others logged. */
function keepValid (validate: Validate | null, batch: unknown[], firstIndex: number, log: SkipLog): unknown[] {
  if (validate === null) return batch
  let kept: unknown[] | null = null
  for (let i = 0; i < batch.length; i++) {
    if (validate(batch[i])) {
      if (kept !== null) kept.push(batch[i])
    } else {
      log.add(invalidItem(validate, firstIndex + i), firstIndex + i, null, null)
      if (kept === null) kept = batch.slice(0, i)
    }
  }
  return kept ?? batch
}

/** The record splitter's `accept`: the item's schema error, or null. */
function acceptWith (validate: Validate | null): ((value: unknown, index: number) => Error | null) | null {
  if (validate === null) return null
  return (value, index) => validate(value) ? null : invalidItem(validate, index)
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

async function * bufferedBatches<T> (request: FastifyRequest, state: BodyState, policy: SecureParseOptions, size: number, call: CheckedBatchesOptions): AsyncGenerator<T[], void, undefined> {
  const validate = itemValidator(request, state)
  const skipping = state.route.onInvalidItem === 'skip'
  let items: unknown[]
  let log = state.skipped ?? new SkipLog(state.route.maxSkipped)
  if (isRecords(state) && skipping && validate !== null) {
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
    items = isRecords(state) ? request.body as unknown[] : pick(request, state, policy, call)
  }
  let yielded = 0
  let batches = 0
  try {
    for (let i = 0; i < items.length; i += size) {
      let batch = items.slice(i, i + size)
      if (!skipping) checkItems(validate, batch, i)
      else if (!isRecords(state)) batch = keepValid(validate, batch, i, log)
      if (batch.length === 0) continue
      yielded += batch.length
      batches++
      yield batch as T[]
    }
  } finally {
    if (skipping) {
      const length = state.chunks?.reduce((n, chunk) => n + chunk.length, 0) ?? 0
      request.streamStats = {
        bytesReceived: state.contentLength ?? length, bytesDecoded: length, items: yielded, batches,
        durationMs: 0, poolHits: 0, poolMisses: 0, throttledMs: 0, skipped: log.count, skippedItems: log.items.slice()
      }
    }
  }
}

/**
 * `batches({ filter })` on a body read whole: the same FilterEngine over its bytes, so that a
 * small body yields exactly what it would streamed (document order, a key given twice refused,
 * the same limits), which a walk of `request.body` could not promise (JavaScript orders
 * integer-like keys first; JSON.parse keeps the last of duplicate keys). The engine runs at
 * stream-json's pace, so the event loop gets a turn between pieces of `FILTER_PIECE` bytes, as
 * a streamed body's does (BodySource's YIELD_EVERY).
 */
async function * filteredBatches<T> (request: FastifyRequest, state: BodyState, policy: SecureParseOptions, size: number, filter: PathFilter): AsyncGenerator<T[], void, undefined> {
  const validate = itemValidator(request, state)
  const skipping = state.route.onInvalidItem === 'skip'
  const log = new SkipLog(state.route.maxSkipped)
  const ready: unknown[][] = []
  const { maxItemSize, maxDepth } = state.route
  const engine = new FilterEngine({ batchSize: size, maxItemSize, maxDepth, pool: state.plugin.pool, ...policy, filter }, items => ready.push(items))
  let seen = 0
  let yielded = 0
  let batches = 0
  const checked = (batch: unknown[]): unknown[] => {
    const first = seen
    seen += batch.length
    if (skipping) return keepValid(validate, batch, first, log)
    checkItems(validate, batch, first)
    return batch
  }
  try {
    let fed = 0
    for (const chunk of state.chunks ?? []) {
      for (let at = 0; at < chunk.length; at += FILTER_PIECE) {
        if (fed > 0) await nextTurn()
        engine.write(chunk.subarray(at, at + FILTER_PIECE))
        fed += FILTER_PIECE
        for (const next of ready.splice(0)) {
          const batch = checked(next)
          if (batch.length === 0) continue
          yielded += batch.length
          batches++
          yield batch as T[]
        }
      }
    }
    engine.end()
    for (const next of ready.splice(0)) {
      const batch = checked(next)
      if (batch.length === 0) continue
      yielded += batch.length
      batches++
      yield batch as T[]
    }
  } finally {
    engine.destroy()
    if (skipping) {
      const length = state.chunks?.reduce((n, chunk) => n + chunk.length, 0) ?? 0
      request.streamStats = {
        bytesReceived: state.contentLength ?? length, bytesDecoded: length, items: yielded, batches,
        durationMs: 0, poolHits: 0, poolMisses: 0, throttledMs: 0, skipped: log.count, skippedItems: log.items.slice()
      }
    }
  }
}

const FILTER_PIECE = 32 * 1024

async function * streamedBatches<T> (request: FastifyRequest, state: BodyState, source: BodySource, policy: SecureParseOptions, size: number, call: CheckedBatchesOptions): AsyncGenerator<T[], void, undefined> {
  const validate = itemValidator(request, state)
  const skipping = state.route.onInvalidItem === 'skip'
  const log = skipping ? new SkipLog(state.route.maxSkipped) : NOTHING_SKIPPED
  const ready: unknown[][] = []
  let current: unknown[] = []
  const onItems = (items: unknown[]): void => {
    // The engines hand out fresh arrays of exactly `size` items when they can: pass those on.
    if (current.length === 0 && items.length === size) {
      ready.push(items)
      return
    }
    for (const item of items) {
      current.push(item)
      if (current.length === size) {
        ready.push(current)
        current = []
      }
    }
  }
  const common = { batchSize: size, maxItemSize: state.route.maxItemSize, maxDepth: state.route.maxDepth, pool: state.plugin.pool, ...policy }
  const records = isRecords(state)
  const scanner = records
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
  let items = 0
  let batches = 0
  /** Array elements seen (yielded or skipped), for the index of the next one. */
  let seen = 0
  const checked = (batch: unknown[]): unknown[] => {
    const first = seen
    seen += batch.length
    if (!skipping) {
      checkItems(validate, batch, first)
      return batch
    }
    return records ? batch : keepValid(validate, batch, first, log)
  }
  try {
    for await (const chunk of source.chunks()) {
      scanner.write(chunk)
      while (ready.length > 0) {
        const batch = checked(ready.shift()!)
        if (batch.length === 0) continue
        items += batch.length
        batches++
        yield batch as T[]
      }
    }
    scanner.end()
    if (current.length > 0) ready.push(current)
    current = []
    for (const next of ready.splice(0)) {
      const batch = checked(next)
      if (batch.length === 0) continue
      items += batch.length
      batches++
      yield batch as T[]
    }
  } catch (error) {
    state.failed = true
    throw source.classify(error)
  } finally {
    scanner.destroy()
    if (!source.ended) source.destroy()
    finishStats(request, state, source, items, batches, poolBefore, log)
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
