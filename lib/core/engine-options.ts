// The options both engines take, with their defaults, defined once. `options.ts` builds the
// plugin's defaults on these; the whole-body parsers pass them on.

import {
  describe,
  integer,
  oneOf,
  optionsObject,
  REGISTRATION,
  invalid,
  type OptionScope
} from '../option-check.js'
import type { BufferPool } from './buffer-pool.js'
import { parsePath, type PathSegment } from './path.js'

/** What to do with `__proto__` keys and `constructor.prototype`, as in Fastify's `onProtoPoisoning`. */
export type PoisoningAction = 'error' | 'remove' | 'ignore'

/** secure-json-parse's prototype-poisoning policy: Fastify's `onProtoPoisoning` and `onConstructorPoisoning`. */
export interface SecureParseOptions {
  readonly protoAction: PoisoningAction
  readonly constructorAction: PoisoningAction
}

export const POISONING_ACTIONS: readonly PoisoningAction[] = Object.freeze(['error', 'remove', 'ignore'])

/** Options both engines take. */
export interface EngineOptions {
  /**
   * The most items in one `onItems` call.
   * @default 1000
   */
  batchSize?: number
  /**
   * A batch is handed on once its items took this many bytes of the body, even if it holds
   * fewer than `batchSize` items (it passes the bound by at most its last item or parse run,
   * at most `maxParseBytes`). `Infinity` for batches cut by count only.
   * @default 1048576 (1 MiB)
   */
  batchBytes?: number
  /**
   * What to do with `__proto__` keys (Fastify's `onProtoPoisoning`).
   * @default 'error'
   */
  protoAction?: PoisoningAction
  /**
   * What to do with `constructor.prototype` (Fastify's `onConstructorPoisoning`).
   * @default 'error'
   */
  constructorAction?: PoisoningAction
  /**
   * Where carry-over buffers for partial items come from; `null` allocates them.
   * @default null
   */
  pool?: BufferPool | null
}

/** Options of `JsonArrayScanner`. */
export interface JsonScannerOptions extends EngineOptions {
  /**
   * Dot path of the array to stream (`items`, `data.rows`, `a.0.b`); a `*` segment matches every
   * key or index at its level (`data.*.rows`), and the items of every matching array are streamed
   * in document order. Without it, the top-level value: an array yields its elements, anything
   * else is one item.
   * @default undefined (top level)
   */
  path?: string
  /**
   * Stream the object at `path` (the top-level value without one) as `[key, value]` pairs, in
   * document order; a value there that is not an object is FST_NEXURE_PATH_NOT_OBJECT.
   * @default false
   */
  entries?: boolean
  /**
   * The most bytes one element or entry value (or, with a path, one value off the path) may have. Crossing it
   * throws FST_NEXURE_ITEM_TOO_LARGE at once, before the element ends.
   * @default 16777216 (16 MiB)
   */
  maxItemSize?: number
  /**
   * The most levels of arrays and objects, counted from the top of the body (the streamed array
   * is one level, an object element a second). A deeper value is refused with
   * FST_NEXURE_INVALID_JSON as soon as its opening bracket is seen.
   * @default 1000
   */
  maxDepth?: number
  /**
   * The most bytes of text handed to one parse call; a single larger element is parsed alone.
   * @default 32768 (32 KiB)
   */
  maxParseBytes?: number
}

/** Options of `NdjsonSplitter`. */
export interface NdjsonSplitterOptions extends EngineOptions {
  /**
   * The most bytes one line may have (without its '\n'); crossing it throws
   * FST_NEXURE_ITEM_TOO_LARGE at once.
   * @default 16777216 (16 MiB)
   */
  maxItemSize?: number
  /**
   * The most levels of arrays and objects in one line's value; a deeper one is refused with
   * FST_NEXURE_INVALID_JSON. Lines of at most this many characters are not even looked at.
   * @default 1000
   */
  maxDepth?: number
  /**
   * 'ndjson': one value per line. 'json-seq': RFC 7464 records, each starting with RS (0x1E).
   * @default 'ndjson'
   */
  format?: 'ndjson' | 'json-seq'
  /**
   * Called instead of throwing for a record that is not valid JSON or that `accept` refuses;
   * the record is left out and splitting goes on. It may throw to end the body. The error is
   * the located one the record would have thrown (a `LocatedError`; typed by its shape here so
   * that the options sit below the faults).
   * @default null (such a record throws)
   */
  skip?: ((error: Error & { code: string, offset: number }, fault: RecordFault) => void) | null
  /**
   * Called with each parsed value when `skip` is set: null keeps it, an error leaves it out
   * (handed to `skip`, located at the start of its line or record).
   * @default null
   */
  accept?: ((value: unknown, index: number) => Error | null) | null
}

/**
 * What `batches({ filter })` selects: a RegExp tested against each value's dotted path
 * (`groups.0.members.3`, `''` for the top-level value), or a function of the path's segments
 * (keys as strings, array indices as numbers). The array handed to the function is nexure's
 * own, valid only during the call: copy it to keep it.
 */
export type PathFilter = RegExp | ((path: readonly (string | number)[]) => boolean)

/** Options of `FilterEngine`. */
export interface FilterEngineOptions extends EngineOptions {
  /** Which values are items: every outermost value whose path it accepts. */
  filter: PathFilter
  /**
   * The most bytes one selected value may have; also bounds one string, number or key outside
   * the selection, an object under a `constructor` key held back (constructorAction 'remove'),
   * and the keys kept of the objects around the selection. Crossing it throws
   * FST_NEXURE_ITEM_TOO_LARGE.
   * @default 16777216 (16 MiB)
   */
  maxItemSize?: number
  /**
   * The most levels of arrays and objects, counted from the top of the body, inside and outside
   * the selection; a deeper one is refused with FST_NEXURE_INVALID_JSON at its opening bracket.
   * @default 1000
   */
  maxDepth?: number
}

/** Where a left-out record was: its index among the body's records, its line (or record) and byte offset. */
export interface RecordFault {
  /** 0-based index among the non-blank records, counting those left out. */
  index: number
  /** 1-based line (NDJSON) or record (JSON text sequence). */
  line: number
  /** Byte offset of the fault in the body. */
  offset: number
}

export const ENGINE_DEFAULTS = Object.freeze({
  batchSize: 1000,
  /** What a batch being filled holds follows the body's bytes, whatever the items' size. */
  batchBytes: 1024 * 1024,
  maxItemSize: 16 * 1024 * 1024,
  /** JSON.stringify, Ajv and util.inspect recurse, and give up a few thousand levels down. */
  maxDepth: 1000,
  /** V8 gives every string above ~128 KiB its own mapping, which costs more than the parse. */
  maxParseBytes: 32 * 1024,
  protoAction: 'error' as PoisoningAction,
  constructorAction: 'error' as PoisoningAction
})

/** An engine's options, checked, with every default filled in. */
export interface ResolvedEngineOptions {
  readonly batchSize: number
  /** Infinity for batches cut by count only. */
  readonly batchBytes: number
  /** Infinity for no limit (a whole body parsed at once). */
  readonly maxItemSize: number
  /** Infinity for no limit. */
  readonly maxDepth: number
  readonly policy: SecureParseOptions
  readonly pool: BufferPool | null
}

const COMMON_KEYS = ['batchSize', 'batchBytes', 'maxItemSize', 'maxDepth', 'protoAction', 'constructorAction', 'pool']
export const NDJSON_KEYS: ReadonlySet<string> = new Set(COMMON_KEYS)
export const ARRAY_KEYS: ReadonlySet<string> = new Set([...COMMON_KEYS, 'path', 'entries', 'maxParseBytes'])
export const FILTER_KEYS: ReadonlySet<string> = new Set([...COMMON_KEYS, 'filter'])

/** The poisoning policy, checked: `'error'` for each action not given. */
export function poisoningPolicy (options: { protoAction?: unknown, constructorAction?: unknown }, scope: OptionScope = REGISTRATION): SecureParseOptions {
  return {
    protoAction: oneOf(scope, 'protoAction', options.protoAction, POISONING_ACTIONS, ENGINE_DEFAULTS.protoAction),
    constructorAction: oneOf(scope, 'constructorAction', options.constructorAction, POISONING_ACTIONS, ENGINE_DEFAULTS.constructorAction)
  }
}

/**
 * Checks the options both engines take (EngineOptions and each engine's interface document them);
 * `known` is the engine's own list of keys.
 */
export function resolveEngineOptions (options: unknown, known: ReadonlySet<string>): ResolvedEngineOptions {
  const own = optionsObject(REGISTRATION, options, known)
  const pool = own.pool as BufferPool | null | false | undefined
  const pooled = pool !== undefined && pool !== null && pool !== false
  if (pooled && (typeof pool !== 'object' || typeof pool.acquire !== 'function')) {
    throw invalid(REGISTRATION, 'pool', 'expected a BufferPool or null')
  }
  return {
    batchSize: integer(REGISTRATION, 'batchSize', own.batchSize, ENGINE_DEFAULTS.batchSize, { min: 1 }),
    batchBytes: integer(REGISTRATION, 'batchBytes', own.batchBytes, ENGINE_DEFAULTS.batchBytes, { min: 1, infinity: true }),
    maxItemSize: integer(REGISTRATION, 'maxItemSize', own.maxItemSize, ENGINE_DEFAULTS.maxItemSize, { min: 1, infinity: true }),
    maxDepth: integer(REGISTRATION, 'maxDepth', own.maxDepth, ENGINE_DEFAULTS.maxDepth, { min: 1, infinity: true }),
    policy: poisoningPolicy(own),
    pool: pooled ? pool : null
  }
}

/** A path option, parsed; a malformed one is refused in the scope's words. */
export function pathOption (scope: OptionScope, name: string, value: unknown): PathSegment[] {
  try {
    return parsePath(value as string | undefined)
  } catch (error) {
    throw invalid(scope, name, (error as Error).message)
  }
}

/**
 * A filter option, checked: a RegExp is copied without its `g` and `y` flags (with them, `test`
 * moves `lastIndex` and the same path would match one time and not the next).
 */
export function filterOption (scope: OptionScope, name: string, value: unknown): PathFilter {
  if (typeof value === 'function') return value as PathFilter
  if (value instanceof RegExp) return new RegExp(value.source, value.flags.replace(/[gy]/g, ''))
  throw invalid(scope, name, `expected a RegExp or a function (path) => boolean, got ${describe(value)}`)
}
