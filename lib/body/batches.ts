import { Readable } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import {
  FST_NEXURE_BODY_CONSUMED,
  FST_NEXURE_INVALID_ITEM,
  FST_NEXURE_PATH_NOT_ARRAY,
  FST_NEXURE_UNSUPPORTED_MEDIA_TYPE
} from '../errors.js'
import { JsonArrayScanner } from '../core/array-scanner.js'
import { NdjsonSplitter } from '../core/ndjson-splitter.js'
import type { PathSegment } from '../core/path.js'
import type { SecureParseOptions } from '../core/engine-options.js'
import { checkBatchesOptions, type BatchesOptions, type StreamStats } from '../options.js'
import type { BodySource } from '../stream/body-source.js'
import { bodyStateOf, type BodyState } from './state.js'

type Validate = ((item: unknown) => boolean) & { errors?: Array<{ instancePath?: string, message?: string }> | null }

const JSON_EXPECTED = 'a JSON or NDJSON body (application/json, application/x-ndjson)'

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

function checkItems (validate: Validate | null, batch: unknown[], firstIndex: number): void {
  if (validate === null) return
  for (let i = 0; i < batch.length; i++) {
    if (!validate(batch[i])) {
      const detail = (validate.errors ?? []).map(e => `${e.instancePath === '' || e.instancePath === undefined ? 'item' : e.instancePath} ${e.message ?? 'is invalid'}`).join('; ')
      throw new FST_NEXURE_INVALID_ITEM(firstIndex + i, detail === '' ? 'does not match itemSchema' : detail)
    }
  }
}

function typeName (value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}

/** Walks a body that was parsed whole to the array at `path` (same rules as the scanner). */
function pick (body: unknown, path: PathSegment[], pathText: string): unknown[] {
  if (path.length === 0) return Array.isArray(body) ? body : [body]
  let value = body
  for (const segment of path) {
    const container = value
    if (container === null || typeof container !== 'object' || Array.isArray(container) !== (typeof segment === 'number')) {
      throw new FST_NEXURE_PATH_NOT_ARRAY(pathText, `found ${typeName(container)} where ${typeof segment === 'number' ? 'an array' : 'an object'} was expected`)
    }
    if (!Object.hasOwn(container, segment)) throw new FST_NEXURE_PATH_NOT_ARRAY(pathText, `"${segment}" is absent`)
    value = (container as Record<string | number, unknown>)[segment]
  }
  if (!Array.isArray(value)) throw new FST_NEXURE_PATH_NOT_ARRAY(pathText, `found ${typeName(value)}`)
  return value
}

function finishStats (request: FastifyRequest, state: BodyState, source: BodySource, items: number, batches: number, poolBefore: { hits: number, misses: number }): void {
  const pool = state.plugin.pool?.stats
  const stats: StreamStats = {
    bytesReceived: source.bytesReceived,
    bytesDecoded: source.bytesDecoded,
    items,
    batches,
    durationMs: Math.round(source.durationMs * 1000) / 1000,
    poolHits: pool === undefined ? 0 : pool.hits - poolBefore.hits,
    poolMisses: pool === undefined ? 0 : pool.misses - poolBefore.misses,
    throttledMs: Math.round(source.throttledMs)
  }
  request.streamStats = stats
  request.log.debug({ streamStats: stats }, 'nexure: streamed body done')
}

async function * bufferedBatches<T> (request: FastifyRequest, state: BodyState, size: number, path: PathSegment[], pathText: string): AsyncGenerator<T[], void, undefined> {
  const items = state.kind === 'ndjson' ? request.body as unknown[] : pick(request.body, path, pathText)
  const validate = itemValidator(request, state)
  for (let i = 0; i < items.length; i += size) {
    const batch = items.slice(i, i + size)
    checkItems(validate, batch, i)
    yield batch as T[]
  }
}

async function * streamedBatches<T> (request: FastifyRequest, state: BodyState, source: BodySource, policy: SecureParseOptions, size: number, pathText: string | undefined): AsyncGenerator<T[], void, undefined> {
  const validate = itemValidator(request, state)
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
  const scanner = state.kind === 'ndjson'
    ? new NdjsonSplitter(common, onItems)
    : new JsonArrayScanner({ ...common, path: pathText }, onItems)
  const poolBefore = state.plugin.pool?.stats ?? { hits: 0, misses: 0 }
  let items = 0
  let batches = 0
  try {
    for await (const chunk of source.chunks()) {
      scanner.write(chunk)
      while (ready.length > 0) {
        const batch = ready.shift()!
        checkItems(validate, batch, items)
        items += batch.length
        batches++
        yield batch as T[]
      }
    }
    scanner.end()
    if (current.length > 0) ready.push(current)
    current = []
    for (const batch of ready.splice(0)) {
      checkItems(validate, batch, items)
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
    finishStats(request, state, source, items, batches, poolBefore)
  }
}

export function createBatches (policy: SecureParseOptions) {
  // The call's own arguments are the application's (a 500 if wrong, whatever the request); the
  // body's content type is the client's choice (a 415 if it does not fit the call).
  return function batches<T = unknown> (this: FastifyRequest, options?: BatchesOptions): AsyncIterableIterator<T[]> {
    const { size: asked, path, pathText } = checkBatchesOptions(options)
    const state = claim(this, 'request.batches()', JSON_EXPECTED)
    const received = this.headers['content-type'] ?? 'none'
    if (state.kind === 'raw') {
      state.consumedBy = null
      throw new FST_NEXURE_UNSUPPORTED_MEDIA_TYPE(received, JSON_EXPECTED)
    }
    if (pathText !== undefined && state.kind === 'ndjson') {
      state.consumedBy = null
      throw new FST_NEXURE_UNSUPPORTED_MEDIA_TYPE(received, `a JSON body (application/json) with an array at "${pathText}" (this route calls batches({ path: '${pathText}' }); NDJSON has no paths)`)
    }
    const size = asked === 0 ? state.route.batchSize : asked
    const source = state.source
    if (source === null) return bufferedBatches<T>(this, state, size, path, pathText ?? '')
    return streamedBatches<T>(this, state, source, policy, size, pathText)
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
