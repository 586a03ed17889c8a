// The one secure parse call of every engine: JSON.parse with secure-json-parse's
// prototype-poisoning policy, as Fastify's own parser applies it.

import sjson from 'secure-json-parse'
import type { SecureParseOptions } from './engine-options.js'

const FORBIDDEN_MESSAGE = 'Object contains forbidden prototype property'

/**
 * False when `text` cannot hold a `__proto__` or `constructor` key under `policy`, so that each
 * value cut from it may be one plain `JSON.parse`: checked once for a run of NDJSON lines, where
 * secure-json-parse would run its two regular expressions over every line (a 10 KB body of 50
 * lines: 100 calls instead of 1). A key spelled with escapes (`\u005f_proto__`) holds `\u`.
 * Three `includes()` rather than one `/__proto__|constructor|\\u/`: V8 searches a fixed
 * string faster than it runs an alternation (10 KB of NDJSON: 3.8 us instead of 6.4; 100 KB of
 * JSON: 40 us instead of 63; `node` microbenchmark, median of 11).
 */
export function mayPoison (text: string, policy: SecureParseOptions): boolean {
  if (policy.protoAction === 'ignore' && policy.constructorAction === 'ignore') return false
  return text.includes('__proto__') || text.includes('constructor') || text.includes('\\u')
}

/** The one parse call: `JSON.parse` plus secure-json-parse's prototype-poisoning policy. */
export function secureParse (text: string, options: SecureParseOptions): unknown {
  return sjson.parse(text, null, options)
}

/** secure-json-parse's policy applied to an already parsed value (throws its SyntaxError). */
export function secureScan (value: unknown, options: SecureParseOptions): void {
  if (value !== null && typeof value === 'object') sjson.scan(value as Record<string, unknown>, options)
}

export function isForbiddenPropertyError (err: unknown): boolean {
  return err instanceof SyntaxError && err.message === FORBIDDEN_MESSAGE
}

/** What `parseProperty` returns for a property the policy removes from its object. */
export const REMOVED: unique symbol = Symbol('removed by the poisoning policy')

/**
 * The value `text` of property `key` (undefined for an array element) of an object that is not
 * parsed whole, under secure-json-parse's policy as a parse of the whole body would apply it:
 * REMOVED when the policy deletes the property (`__proto__` under protoAction 'remove', a
 * `constructor` holding a `prototype` under constructorAction 'remove'); a removed value is
 * still checked to be JSON, and not looked into. A forbidden `__proto__` key is refused by the
 * caller when it reads the key, before its value.
 */
export function parseProperty (key: string | undefined, text: string, policy: SecureParseOptions): unknown {
  if (key === '__proto__' && policy.protoAction === 'remove') {
    JSON.parse(text)
    return REMOVED
  }
  if (key === 'constructor' && policy.constructorAction !== 'ignore') {
    const value: unknown = JSON.parse(text)
    if (value !== null && typeof value === 'object' && Object.hasOwn(value, 'prototype')) {
      if (policy.constructorAction === 'error') throw new SyntaxError(FORBIDDEN_MESSAGE)
      return REMOVED
    }
    secureScan(value, policy)
    return value
  }
  return secureParse(text, policy)
}
