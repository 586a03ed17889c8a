// The one option checker: both plugins (registration and route config), both engines and
// `request.batches()` check their options here, so a wrong value reads the same wherever it is
// given: `<where>: expected <what>, got <value>`, and an unknown key
// `<where>: unknown option (known: ...)`.
//
// What differs is only where an option sits and whose mistake it is: a scope names the option
// (`maxFiles`, `config.streamUpload.maxFiles of POST /upload`, `request.batches({ size })`) and
// builds the error (FST_NEXURE_INVALID_OPTION at registration, FST_NEXURE_INVALID_ARGUMENT for
// a request method's argument at request time).

import { FST_NEXURE_INVALID_OPTION } from './errors.js'

export interface OptionScope {
  /** How option `name` is named in messages; `''` names the options object itself. */
  label (name: string): string
  /** The error for the option labelled `label`. */
  error (label: string, why: string): Error
}

function invalidOptionError (label: string, why: string): Error {
  return new FST_NEXURE_INVALID_OPTION(label, why)
}

/** Fastify hands a plugin its register() options too (prefix, logLevel): they are not the plugin's. */
export const FASTIFY_REGISTER_KEYS: ReadonlySet<string> = new Set(['prefix', 'logLevel', 'logSerializers'])

/** Options given at registration (plugin, engine): named as they are given. */
export const REGISTRATION: OptionScope = Object.freeze({
  label: (name: string) => name === '' ? 'options' : name,
  error: invalidOptionError
})

/** Options inside another option (`underPressure.`, `config.streamBody.`), with a `suffix` such as ` of POST /upload`. */
export function scopeOf (prefix: string, suffix = ''): OptionScope {
  const whole = prefix.replace(/\.$/, '')
  return Object.freeze({
    label: (name: string) => `${name === '' ? whole : prefix + name}${suffix}`,
    error: invalidOptionError
  })
}

export function invalid (scope: OptionScope, name: string, why: string): Error {
  return scope.error(scope.label(name), why)
}

/** A value as a message shows it: strings quoted, objects by kind, never their contents. */
export function describe (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'function') return 'a function'
  if (value === null || typeof value !== 'object') return String(value)
  return Array.isArray(value) ? 'an array' : 'an object'
}

function expected (scope: OptionScope, name: string, what: string, value: unknown): Error {
  return invalid(scope, name, `expected ${what}, got ${describe(value)}`)
}

export interface IntegerRule {
  /** The smallest value allowed: 1 (a size, a count) or 0 (a limit, a timeout that 0 turns off). */
  min: 0 | 1
  /** Infinity is allowed, for "no limit". */
  infinity?: boolean
}

/** An integer option: `value`, or `fallback` when it is undefined. */
export function integer (scope: OptionScope, name: string, value: unknown, fallback: number, rule: IntegerRule): number {
  if (value === undefined) return fallback
  if (typeof value === 'number' && ((Number.isSafeInteger(value) && value >= rule.min) || (rule.infinity === true && value === Infinity))) {
    return value
  }
  const what = rule.min === 1 ? 'a positive integer' : 'a non-negative integer'
  throw expected(scope, name, rule.infinity === true ? `${what} or Infinity` : what, value)
}

export function positiveInteger (scope: OptionScope, name: string, value: unknown, fallback: number): number {
  return integer(scope, name, value, fallback, { min: 1 })
}

export function nonNegativeInteger (scope: OptionScope, name: string, value: unknown, fallback: number): number {
  return integer(scope, name, value, fallback, { min: 0 })
}

export function boolean (scope: OptionScope, name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw expected(scope, name, 'a boolean', value)
  return value
}

/** One of a few strings. */
export function oneOf<T extends string> (scope: OptionScope, name: string, value: unknown, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback
  if (typeof value === 'string' && (choices as readonly string[]).includes(value)) return value as T
  throw expected(scope, name, `one of ${choices.map(c => `'${c}'`).join(', ')}`, value)
}

/** A string of at least one character. */
export function text (scope: OptionScope, name: string, value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0) throw expected(scope, name, what, value)
  return value
}

/** An array of functions (transform factories), copied and frozen. */
export function functionList<F> (scope: OptionScope, name: string, value: unknown, fallback: readonly F[], what: string): readonly F[] {
  if (value === undefined) return fallback
  if (!Array.isArray(value)) throw expected(scope, name, `an array of ${what}`, value)
  value.forEach((item: unknown, index) => {
    if (typeof item !== 'function') throw expected(scope, `${name}[${index}]`, what, item)
  })
  return Object.freeze([...value] as F[])
}

/**
 * An options object with only known keys (and `ignored` ones, which belong to someone else:
 * Fastify's `prefix` and `logLevel` reach a plugin's options too). `undefined` is `{}`.
 */
export function optionsObject (scope: OptionScope, value: unknown, known: ReadonlySet<string>, ignored?: ReadonlySet<string>): Record<string, unknown> {
  if (value === undefined) return {}
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw expected(scope, '', 'an object', value)
  for (const key of Object.keys(value)) {
    if (!known.has(key) && ignored?.has(key) !== true) {
      throw invalid(scope, key, `unknown option (known: ${[...known].join(', ')})`)
    }
  }
  return value as Record<string, unknown>
}
