// Shared by the array scanner and the NDJSON splitter: the one secure parse call, and turning a
// parse failure into a coded error that says where the fault is, in bytes of the body.
//
// Positions in V8's JSON.parse messages count UTF-16 code units of the parsed string; clients
// need byte offsets into what they sent, so positions are converted by walking the UTF-8 bytes
// the way Buffer#toString decodes them (an invalid sequence is one U+FFFD).

import sjson from 'secure-json-parse'
import {
  FST_NEXURE_EMPTY_BODY,
  FST_NEXURE_FORBIDDEN_PROPERTY,
  FST_NEXURE_INVALID_JSON,
  FST_NEXURE_ITEM_TOO_LARGE,
  FST_NEXURE_PATH_NOT_ARRAY
} from '../errors.js'
import { JsonArrayScanner } from './array-scanner.js'
import { NdjsonSplitter, type NdjsonSplitterOptions } from './ndjson-splitter.js'
import type { BufferPool } from './buffer-pool.js'
import { ENGINE_DEFAULTS, poisoningPolicy, type SecureParseOptions } from './engine-options.js'

/**
 * Where a fault is: the byte offset in the body, and the item index, 1-based line (NDJSON) or
 * 1-based record (JSON text sequence) when known.
 */
export interface FaultLocation {
  offset: number
  item?: number | undefined
  line?: number | undefined
  record?: number | undefined
}

/** A nexure error with its location as numbers, for programs. */
export type LocatedError = Error & { code: string, statusCode: number, offset: number, item?: number, line?: number, record?: number }

const FORBIDDEN_MESSAGE = 'Object contains forbidden prototype property'
const POSITION = / (?:in JSON )?at position (\d+)(?: \(line \d+ column \d+\))?$/
const SNIPPET = /, (?:\.\.\.)?".*"(?:\.\.\.)? is not valid JSON$/s

/** The message of a value nested deeper than `maxDepth`. */
export function tooDeepDetail (maxDepth: number): string {
  return `Value nested too deeply: more than ${maxDepth} levels of arrays and objects (maxDepth)`
}

/**
 * Index of the first '[' or '{' in text[from, to) that opens a level deeper than `maxDepth`,
 * outside strings, or -1. A text of at most `maxDepth` characters cannot have one, so callers
 * skip it: the usual NDJSON line costs nothing. Unbalanced closers only lower the count (the
 * parse refuses them anyway).
 */
export function depthFault (text: string, from: number, to: number, maxDepth: number): number {
  if (to - from <= maxDepth) return -1
  let depth = 0
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22) {
      for (i++; i < to; i++) {
        const d = text.charCodeAt(i)
        if (d === 0x22) break
        if (d === 0x5c) i++
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return i
    } else if (c === 0x5d || c === 0x7d) {
      depth--
    }
  }
  return -1
}

// 1: '"', 2: '[' or '{', 3: ']' or '}', 0: anything else.
const DEPTH_CLASS = new Uint8Array(256)
DEPTH_CLASS[0x22] = 1
DEPTH_CLASS[0x5b] = DEPTH_CLASS[0x7b] = 2
DEPTH_CLASS[0x5d] = DEPTH_CLASS[0x7d] = 3

/**
 * `depthFault` on the UTF-8 bytes of a whole body, returning a byte offset: about twice as fast
 * as reading characters (a buffered 100 KB body: ~0.2 ms instead of ~0.4 ms, against ~0.6 ms for
 * its JSON.parse). Multi-byte characters never contain these ASCII bytes.
 */
export function depthFaultInBytes (bytes: Uint8Array, from: number, to: number, maxDepth: number): number {
  if (to - from <= maxDepth) return -1
  let depth = 0
  for (let i = from; i < to; i++) {
    const kind = DEPTH_CLASS[bytes[i]!]!
    if (kind === 0) continue
    if (kind === 1) {
      for (i++; i < to; i++) {
        const d = bytes[i]!
        if (d === 0x22) break
        if (d === 0x5c) i++
      }
    } else if (kind === 2) {
      if (++depth > maxDepth) return i
    } else {
      depth--
    }
  }
  return -1
}

/**
 * The largest whole body whose depth is checked after the parse, on the value. Walking the value
 * visits containers, not characters: an 84 KB array of 380 rows costs ~40 us to walk and
 * ~120-230 us to check byte by byte, against ~480 us to parse (`node` microbenchmark, 2 cores).
 * But V8 parses deeply nested input slowly (100 KB of nested arrays: 18 ms, 22 times as long as
 * 100 KB of rows; 2 MB: 0.7 s), so past this size the bytes are checked before the parse: the
 * worst a body walked after its parse can cost is then ~12 ms.
 */
export const WALK_AFTER_PARSE = 128 * 1024

/**
 * True when `value` nests arrays and objects more than `maxDepth` levels (the value itself is
 * level 1). Recursive while that stays well inside the stack (`RECURSE_UP_TO` levels), which is
 * 2.6-3x as fast as walking with explicit stacks (a 10 KB array of rows: 2.8 us instead of
 * 8.5 us, 1 MB: 0.29 ms instead of 0.75 ms; `node` microbenchmark, 5 rounds); iterative beyond,
 * so any maxDepth is safe.
 */
export function nestedDeeperThan (value: unknown, maxDepth: number): boolean {
  if (value === null || typeof value !== 'object') return false
  return maxDepth <= RECURSE_UP_TO ? deeperThan(value, maxDepth) : walkDeeperThan(value, maxDepth)
}

const RECURSE_UP_TO = 4096

/** True when `value` (an array or object) has more than `levels` levels. */
function deeperThan (value: object, levels: number): boolean {
  if (levels === 0) return true
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i]
      if (item !== null && typeof item === 'object' && deeperThan(item, levels - 1)) return true
    }
  } else {
    const record = value as Record<string, unknown>
    for (const key in record) {
      const item = record[key]
      if (item !== null && typeof item === 'object' && deeperThan(item, levels - 1)) return true
    }
  }
  return false
}

function walkDeeperThan (value: object, maxDepth: number): boolean {
  const containers: object[] = [value]
  const depths: number[] = [1]
  while (containers.length > 0) {
    const container = containers.pop() as Record<string, unknown>
    const depth = depths.pop() as number
    if (depth > maxDepth) return true
    if (Array.isArray(container)) {
      for (let i = 0; i < container.length; i++) {
        const item: unknown = container[i]
        if (item !== null && typeof item === 'object') { containers.push(item); depths.push(depth + 1) }
      }
    } else {
      for (const key in container) {
        const item = container[key]
        if (item !== null && typeof item === 'object') { containers.push(item); depths.push(depth + 1) }
      }
    }
  }
  return false
}

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

function where (location: FaultLocation): string {
  let text = `at byte offset ${location.offset}`
  if (location.line !== undefined) text += ` (line ${location.line})`
  else if (location.record !== undefined) text += ` (record ${location.record})`
  else if (location.item !== undefined) text += ` (item ${location.item})`
  return text
}

function locate<E extends Error> (err: E, location: FaultLocation): E & LocatedError {
  const located = err as E & LocatedError
  located.offset = location.offset
  if (location.item !== undefined) located.item = location.item
  if (location.line !== undefined) located.line = location.line
  if (location.record !== undefined) located.record = location.record
  return located
}

export function invalidJsonError (detail: string, location: FaultLocation): LocatedError {
  return locate(new FST_NEXURE_INVALID_JSON(`${detail} ${where(location)}`), location)
}

export function forbiddenPropertyError (location: FaultLocation, what = ''): LocatedError {
  return locate(new FST_NEXURE_FORBIDDEN_PROPERTY(`${what}${what === '' ? '' : ' '}${where(location)}`), location)
}

export function itemTooLargeError (what: string, limit: number, location: FaultLocation): LocatedError {
  return locate(new FST_NEXURE_ITEM_TOO_LARGE(`${what} ${where(location)}`, limit), location)
}

export function emptyBodyError (): LocatedError {
  return locate(new FST_NEXURE_EMPTY_BODY(), { offset: 0 })
}

export function pathNotArrayError (path: string, detail: string, location: FaultLocation): LocatedError {
  return locate(new FST_NEXURE_PATH_NOT_ARRAY(path, `${detail} (${where(location)})`), location)
}

/**
 * The byte index (from `start`) of UTF-16 code unit `charIndex` of `bytes[start, end)` decoded
 * as UTF-8, decoding invalid sequences as Buffer#toString does (maximal subpart -> one U+FFFD).
 */
export function byteOffsetOfChar (bytes: Uint8Array, start: number, end: number, charIndex: number): number {
  let units = 0
  let i = start
  while (i < end && units < charIndex) {
    const lead = bytes[i]!
    if (lead < 0x80) {
      i++
      units++
      continue
    }
    let need = 0
    let lo = 0x80
    let hi = 0xbf
    if (lead >= 0xc2 && lead <= 0xdf) {
      need = 1
    } else if (lead >= 0xe0 && lead <= 0xef) {
      need = 2
      if (lead === 0xe0) lo = 0xa0
      else if (lead === 0xed) hi = 0x9f
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      need = 3
      if (lead === 0xf0) lo = 0x90
      else if (lead === 0xf4) hi = 0x8f
    }
    let j = i + 1
    let got = 0
    while (got < need && j < end) {
      const next = bytes[j]!
      if (next < lo || next > hi) break
      lo = 0x80
      hi = 0xbf
      j++
      got++
    }
    units += need === 3 && got === 3 ? 2 : 1
    i = j
  }
  return i - start
}

// V8 gives no position for "Unexpected token": the fault is the character just after the
// longest prefix that JSON.parse does not fault before its end (found by bisection; error path only).
function faultIndex (text: string, skipsBom: boolean): number {
  const body = skipsBom && text.charCodeAt(0) === 0xfeff ? 1 : 0
  const viable = (length: number): boolean => {
    try {
      JSON.parse(text.slice(body, length))
      return true
    } catch (err) {
      const message = (err as Error).message
      const position = POSITION.exec(message)
      return position === null ? message.startsWith('Unexpected end of JSON input') : Number(position[1]) >= length - body
    }
  }
  let low = body
  let high = text.length
  while (low < high) {
    const middle = (low + high + 1) >>> 1
    if (viable(middle)) low = middle
    else high = middle - 1
  }
  return low
}

/**
 * Turns a failed parse of `bytes[start, end)` into a located INVALID_JSON or FORBIDDEN_PROPERTY
 * error. `prefixChars` is how many code units the parsed string had before those bytes (1 when
 * the text was wrapped in '[' ']').
 */
export function parseFailure (
  err: unknown, bytes: Buffer, start: number, end: number, bodyOffset: number,
  prefixChars: number, location: Omit<FaultLocation, 'offset'>
): LocatedError {
  if (isForbiddenPropertyError(err)) {
    return forbiddenPropertyError({ ...location, offset: bodyOffset })
  }
  const message = err instanceof Error ? err.message : String(err)
  const position = POSITION.exec(message)
  let offset = bodyOffset
  let detail = message.replace(SNIPPET, '')
  if (position !== null) {
    detail = message.slice(0, position.index)
    const charIndex = Number(position[1]) - prefixChars
    if (charIndex > 0) offset = bodyOffset + byteOffsetOfChar(bytes, start, end, charIndex)
  } else if (message.startsWith('Unexpected end of JSON input')) {
    offset = bodyOffset + (end - start)
  } else {
    offset = bodyOffset + byteOffsetOfChar(bytes, start, end, faultIndex(bytes.toString('utf8', start, end), prefixChars < 0))
  }
  if (err instanceof RangeError) detail = `Value nested too deeply (${message})`
  return invalidJsonError(detail, { ...location, offset })
}

/**
 * Parses a whole buffered JSON body (one secure parse call). On failure it throws the same coded,
 * located error a JsonArrayScanner would throw for the same bytes.
 */
export function parseJsonBody (body: Buffer, options: Partial<SecureParseOptions> & { maxDepth?: number } = {}): unknown {
  return parseJsonWhole(body, poisoningPolicy(options), options.maxDepth ?? ENGINE_DEFAULTS.maxDepth)
}

/**
 * `parseJsonBody` with its options already checked: the per-request call of the small-body
 * path, which builds no options object (a 1 KB body's request spent ~1.5 us in two of them).
 */
export function parseJsonWhole (body: Buffer, policy: SecureParseOptions, maxDepth: number): unknown {
  // A value nested more than maxDepth levels needs two brackets a level: a shorter body cannot
  // be too deep. A body up to WALK_AFTER_PARSE is checked on its parsed value, which costs a
  // fraction of a pass over its bytes; a larger one on its bytes first, so that V8 never spends
  // its slow path on deep input (see WALK_AFTER_PARSE). Removing a poisoned key could hide a deep
  // value inside it, so then the bytes are checked first too.
  const mayBeDeep = body.length >= 2 * (maxDepth + 1)
  const walk = mayBeDeep && body.length <= WALK_AFTER_PARSE && policy.protoAction !== 'remove' && policy.constructorAction !== 'remove'
  try {
    if (mayBeDeep && !walk && depthFaultInBytes(body, 0, body.length, maxDepth) !== -1) throw new RangeError(tooDeepDetail(maxDepth))
    const text = body.toString('utf8')
    // JSON.parse itself when the text cannot hold a poisoned key (nor a BOM, which
    // secure-json-parse strips): one pass of MAY_POISON instead of secure-json-parse's two
    // regular expressions (a 1 KB body: 0.4 us instead of 1.7 us; 1 MB: 0.5 ms instead of 0.7 ms).
    const value = mayPoison(text, policy) || text.charCodeAt(0) === 0xfeff ? secureParse(text, policy) : JSON.parse(text) as unknown
    if (walk && nestedDeeperThan(value, maxDepth)) throw new RangeError(tooDeepDetail(maxDepth))
    return value
  } catch (err) {
    // The slow path runs only on bad input: scan it to find where the fault is.
    const scanner = new JsonArrayScanner({ ...policy, maxDepth, maxItemSize: Infinity }, () => {})
    scanner.write(body)
    scanner.end()
    throw invalidJsonError(err instanceof Error ? err.message : String(err), { offset: 0 })
  }
}

/**
 * Parses a whole buffered NDJSON body (the values of all its non-blank lines), or with
 * `format: 'json-seq'` a JSON text sequence (the values of its records).
 */
export function parseNdjsonBody (body: Buffer, options: Omit<NdjsonSplitterOptions, 'batchSize' | 'pool'> = {}): unknown[] {
  const items: unknown[] = []
  const splitter = new NdjsonSplitter({ maxItemSize: Infinity, ...options, batchSize: Number.MAX_SAFE_INTEGER }, batch => {
    for (const item of batch) items.push(item)
  })
  splitter.write(body)
  splitter.end()
  return items
}

/**
 * The bytes of a partial item (and of parsed-later items before it) carried from one chunk to the
 * next. The first buffer is a slab from the pool; an item that outgrows it moves to a plain
 * buffer of doubling size, never more than `limit` bytes, and the slab goes back at once.
 */
export class CarryBuffer {
  bytes: Buffer | null = null
  length = 0
  readonly #pool: BufferPool | null
  readonly #limit: number
  readonly #initialSize: number
  #pooled = false

  constructor (pool: BufferPool | null, limit: number) {
    this.#pool = pool
    this.#limit = limit
    this.#initialSize = pool === null ? 64 * 1024 : pool.slabSize
  }

  append (source: Uint8Array, from: number, to: number): void {
    const needed = this.length + (to - from)
    let bytes = this.bytes
    if (bytes === null || bytes.length < needed) bytes = this.#grow(needed)
    bytes.set(source.subarray(from, to), this.length)
    this.length = needed
  }

  /** Forgets the first `count` bytes. */
  drop (count: number): void {
    if (count <= 0) return
    const bytes = this.bytes
    if (bytes !== null && count < this.length) bytes.copyWithin(0, count, this.length)
    this.length = Math.max(0, this.length - count)
    this.#shrink()
  }

  clear (): void {
    this.length = 0
    this.#shrink()
  }

  release (): void {
    const bytes = this.bytes
    this.bytes = null
    this.length = 0
    if (bytes !== null && this.#pooled) this.#pool!.release(bytes)
    this.#pooled = false
  }

  #grow (needed: number): Buffer {
    const old = this.bytes
    let next: Buffer
    if (old === null && this.#pool !== null && needed <= this.#pool.slabSize) {
      next = this.#pool.acquire()
      this.bytes = next
      this.#pooled = true
      return next
    }
    const doubled = old === null ? this.#initialSize : old.length * 2
    const size = Math.max(needed, Math.min(doubled, this.#limit))
    next = Buffer.allocUnsafeSlow(size)
    if (old !== null) {
      old.copy(next, 0, 0, this.length)
      if (this.#pooled) this.#pool!.release(old)
    }
    this.bytes = next
    this.#pooled = false
    return next
  }

  // A buffer grown for one big item is not kept once the item is gone.
  #shrink (): void {
    if (!this.#pooled && this.bytes !== null && this.bytes.length > this.#initialSize && this.length <= this.#initialSize) {
      const old = this.bytes
      this.bytes = null
      if (this.length > 0) {
        const kept = this.length
        this.length = 0
        this.append(old, 0, kept)
      }
    }
  }
}
