// The options both engines take, with their defaults, defined once. `options.ts` builds the
// plugin's defaults on these; the whole-body parsers pass them on.

import {
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

export const ENGINE_DEFAULTS = Object.freeze({
  batchSize: 1000,
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
  /** Infinity for no limit (a whole body parsed at once). */
  readonly maxItemSize: number
  /** Infinity for no limit. */
  readonly maxDepth: number
  readonly policy: SecureParseOptions
  readonly pool: BufferPool | null
}

const COMMON_KEYS = ['batchSize', 'maxItemSize', 'maxDepth', 'protoAction', 'constructorAction', 'pool']
export const NDJSON_KEYS: ReadonlySet<string> = new Set(COMMON_KEYS)
export const ARRAY_KEYS: ReadonlySet<string> = new Set([...COMMON_KEYS, 'path', 'maxParseBytes'])

/** The poisoning policy, checked: `'error'` for each action not given. */
export function poisoningPolicy (options: { protoAction?: unknown, constructorAction?: unknown }, scope: OptionScope = REGISTRATION): SecureParseOptions {
  return {
    protoAction: oneOf(scope, 'protoAction', options.protoAction, POISONING_ACTIONS, ENGINE_DEFAULTS.protoAction),
    constructorAction: oneOf(scope, 'constructorAction', options.constructorAction, POISONING_ACTIONS, ENGINE_DEFAULTS.constructorAction)
  }
}

/**
 * Checks the options both engines take (each engine's options interface documents them);
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
