// `streamBody`'s options checked and resolved, once each: at registration (a fresh frozen
// object; the caller's is never touched), per route (the plugin's with `config.streamBody` on
// top), and per `request.batches()` call. The option types and defaults are options.ts's; the
// checks are option-check.ts's, so a wrong value reads the same as everywhere else.

import type { BufferPool } from '../core/buffer-pool.js'
import { FST_NEXURE_INVALID_ARGUMENT } from '../errors.js'
import { filterOption, pathOption, type PathFilter } from '../core/engine-options.js'
import type { PathSegment } from '../core/path.js'
import {
  describe,
  FASTIFY_REGISTER_KEYS,
  boolean,
  functionList,
  integer,
  invalid,
  nonNegativeInteger,
  oneOf,
  optionsObject,
  positiveInteger,
  REGISTRATION,
  scopeOf,
  type OptionScope
} from '../option-check.js'
import type { PressureBounds } from '../stream/pressure.js'
import {
  RAW_CONTENT_TYPES,
  STREAM_BODY_DEFAULTS,
  type BatchesOptions,
  type StreamBodyOptions,
  type TransformFactory
} from '../options.js'

/** The options of one registration, normalized: every field present, frozen. */
export interface ResolvedStreamBodyOptions {
  readonly streamThreshold: number
  readonly batchSize: number
  /** Infinity for batches cut by count only. */
  readonly batchBytes: number
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
  readonly batchBytes: number
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

const PLUGIN_KEYS: ReadonlySet<string> = new Set(['streamThreshold', 'batchSize', 'batchBytes', 'bodyLimit', 'maxItemSize', 'maxDepth', 'maxBufferSize',
  'streamChunkSize', 'pool', 'transforms', 'rawContentTypes', 'drainLimit', 'bodyTimeout', 'idleTimeout', 'underPressure', 'onInvalidItem', 'maxSkipped'])
const ROUTE_KEYS: ReadonlySet<string> = new Set(['streamThreshold', 'batchSize', 'batchBytes', 'bodyLimit', 'maxItemSize', 'maxDepth', 'itemSchema', 'transforms',
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
    batchBytes: integer(at, 'batchBytes', own.batchBytes, d.batchBytes, { min: 1, infinity: true }),
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
    batchBytes: integer(ROUTE, 'batchBytes', route.batchBytes, plugin.batchBytes, { min: 1, infinity: true }),
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
