// The one secure parse call of every engine: JSON.parse with secure-json-parse's
// prototype-poisoning policy, as Fastify's own parser applies it.

import sjson from 'secure-json-parse'
import type { SecureParseOptions } from './engine-options.js'

const FORBIDDEN_MESSAGE = 'Object contains forbidden prototype property'

// A text that holds neither key secure-json-parse guards against, nor a \u escape (which could
// spell one), cannot poison anything: its values need no second look.
const MAY_POISON = /__proto__|constructor|\\u/

/**
 * False when `text` cannot hold a `__proto__` or `constructor` key under `policy`, so that each
 * value cut from it may be one plain `JSON.parse`: checked once for a run of NDJSON lines, where
 * secure-json-parse would run its two regular expressions over every line (a 10 KB body of 50
 * lines: 100 calls instead of 1).
 */
export function mayPoison (text: string, policy: SecureParseOptions): boolean {
  return (policy.protoAction !== 'ignore' || policy.constructorAction !== 'ignore') && MAY_POISON.test(text)
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
