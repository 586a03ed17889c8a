// The array scanner's path navigator: walks everything of a JSON body that is not an element of
// a streamed array (the objects and arrays on the way to it at `path`, and what follows it), and
// the object streamed as entries.
//
// It holds one frame per path segment entered, and reads byte by byte, but what it reads is only
// punctuation, whitespace and the first byte of values: every value it meets (a key, a value off
// the path, a top-level value that is not an array, an entry's value) is captured whole by the
// scanner (bounded by maxItemSize) and handed back to `captured`, which parses it (keys, the
// top-level value, entries) or validates and drops it (values off the path), under the same
// prototype-poisoning policy as a parse of the whole body. The scanner drives it only outside
// its element loop.
//
// A `*` segment matches every key or index at its level, so the target may be reached many
// times, in document order. Where every key is taken (a `*` over an object, the entries object)
// the keys seen are kept, to refuse one given twice: JSON.parse would keep the last value, and
// what was streamed cannot be taken back. That set grows with the keys of such an object, not
// with its values. The rules and the words of faults are path.ts's.

import type { SecureParseOptions } from './engine-options.js'
import {
  BOM,
  CLOSE_BRACE,
  CLOSE_BRACKET,
  COLON,
  COMMA,
  describeByte,
  describeFirstByte,
  isWhitespace,
  OPEN_BRACE,
  OPEN_BRACKET,
  QUOTE,
  STARTS_SCALAR
} from './json-bytes.js'
import { emptyBodyError, forbiddenPropertyError, invalidJsonError, pathNotArrayError, pathNotObjectError, type LocatedError } from './fault.js'
import { parseProperty, REMOVED, secureParse } from './secure-parse.js'
import {
  absentKeyDetail,
  acceptsContainer,
  foundDetail,
  givenTwiceDetail,
  hasWildcard,
  matches,
  pathLabel,
  removedConstructorDetail,
  shortArrayDetail,
  WILDCARD,
  type PathSegment
} from './path.js'

/** What a value the scanner captures for the navigator is. */
export const KEY = 1
export const OFF_PATH = 2
export const ROOT = 3
export const ENTRY = 4
export type Purpose = typeof KEY | typeof OFF_PATH | typeof ROOT | typeof ENTRY

/** What the navigator asks of the scanner. */
export interface NavigatorHost {
  /**
   * Captures the value whose first byte is buf[i]; `levels` is how many arrays and objects are
   * open around it. Returns where scanning goes on.
   */
  capture: (buf: Buffer, base: number, i: number, purpose: Purpose, levels: number) => number
  /** A streamed array opens at buf[i], `levels` deep. Returns where scanning goes on. */
  enterTarget: (i: number, levels: number) => number
  /** The object streamed as entries has ended. */
  leaveEntries: () => void
}

// Navigator states.
const N_ROOT = 0
const N_KEY_OR_CLOSE = 1
const N_KEY = 2
const N_COLON = 3
const N_VALUE = 4
const N_AFTER_VALUE = 5
const N_VALUE_OR_CLOSE_ARRAY = 6
const N_VALUE_IN_ARRAY = 7
const N_AFTER_VALUE_IN_ARRAY = 8
const N_TRAILING = 9

interface PathFrame {
  readonly isArray: boolean
  /** This object is the value of a `constructor` key (secure-json-parse looks for its `prototype`). */
  readonly isConstructorValue: boolean
  /** The path segment this frame resolves (the entries object: `*`). */
  readonly segment: PathSegment
  /** The object streamed as entries. */
  readonly entries: boolean
  /** Keys taken so far, where every key is taken (`*`, entries); null elsewhere. */
  readonly taken: Set<string> | null
  /** The segment was found here (a second occurrence is refused). */
  matched: boolean
  /** Elements seen so far (arrays). */
  count: number
  /** The key being read or whose value is being read (objects). */
  key: string
}

export class PathNavigator {
  readonly #host: NavigatorHost
  readonly #segments: PathSegment[]
  readonly #path: string
  readonly #policy: SecureParseOptions
  readonly #entries: boolean
  readonly #wildcard: boolean
  readonly #frames: PathFrame[] = []
  #nav = N_ROOT
  #bomPosition = 0
  #sawValue = false
  #keyMatches = false
  #keyOffset = 0

  constructor (host: NavigatorHost, segments: PathSegment[], path: string, policy: SecureParseOptions, entries = false) {
    this.#host = host
    this.#segments = segments
    this.#path = path
    this.#policy = policy
    this.#entries = entries
    this.#wildcard = hasWildcard(segments)
  }

  /** The whole body has been walked: only whitespace may follow. */
  get finished (): boolean {
    return this.#nav === N_TRAILING
  }

  /** The path may reach more than one array or object (it has a `*`). */
  get repeats (): boolean {
    return this.#wildcard
  }

  /** At the end of the body: the fault of a body with no value at all, or null. */
  emptyBodyFault (): LocatedError | null {
    if (this.#nav !== N_ROOT) return null
    if (this.#bomPosition === 1 || this.#bomPosition === 2) return invalidJsonError('Invalid UTF-8 byte order mark', { offset: 0 })
    return this.#sawValue ? null : emptyBodyError()
  }

  /** Walks buf from i; returns where a captured value or the streamed array starts, or buf.length. */
  navigate (buf: Buffer, base: number, i: number): number {
    const n = buf.length
    for (; i < n; i++) {
      const c = buf[i]!
      if (this.#bomPosition < 3) {
        if (base + i === this.#bomPosition && c === BOM[this.#bomPosition]) {
          this.#bomPosition++
          continue
        }
        if (this.#bomPosition > 0) throw invalid('Invalid UTF-8 byte order mark', 0)
        this.#bomPosition = 3
      }
      if (isWhitespace(c)) continue
      switch (this.#nav) {
        case N_ROOT:
          this.#sawValue = true
          return this.#value(buf, base, i)
        case N_KEY_OR_CLOSE:
        case N_KEY:
          if (c === CLOSE_BRACE && this.#nav === N_KEY_OR_CLOSE) {
            this.#closeFrame(base + i)
            break
          }
          if (c !== QUOTE) {
            const why = c === CLOSE_BRACE ? ' (trailing comma)' : ''
            throw invalid(`Expected a property name, found ${describeByte(c)}${why}`, base + i)
          }
          this.#keyOffset = base + i
          return this.#host.capture(buf, base, i, KEY, this.#frames.length)
        case N_COLON:
          if (c !== COLON) throw invalid(`Expected ':' after a property name, found ${describeByte(c)}`, base + i)
          this.#nav = N_VALUE
          break
        case N_VALUE:
          return this.#value(buf, base, i)
        case N_AFTER_VALUE:
          if (c === COMMA) this.#nav = N_KEY
          else if (c === CLOSE_BRACE) this.#closeFrame(base + i)
          else throw invalid(`Expected ',' or '}' after a property value, found ${describeByte(c)}`, base + i)
          break
        case N_VALUE_OR_CLOSE_ARRAY:
          if (c === CLOSE_BRACKET) {
            this.#closeFrame(base + i)
            break
          }
          return this.#value(buf, base, i)
        case N_VALUE_IN_ARRAY:
          if (c === CLOSE_BRACKET) throw invalid('Unexpected \']\' (trailing comma), expected an array element', base + i)
          return this.#value(buf, base, i)
        case N_AFTER_VALUE_IN_ARRAY:
          if (c === COMMA) this.#nav = N_VALUE_IN_ARRAY
          else if (c === CLOSE_BRACKET) this.#closeFrame(base + i)
          else throw invalid(`Expected ',' or ']' after an array element, found ${describeByte(c)}`, base + i)
          break
        default:
          throw invalid(`Unexpected ${describeByte(c)} after the JSON value`, base + i)
      }
    }
    return i
  }

  /**
   * A value captured for the navigator is complete: a key is parsed and matched against the path,
   * the top-level value parsed and returned, a value off the path validated and dropped, an
   * entry's value parsed and returned as `[key, value]` (REMOVED when the policy deletes it). A
   * parse failure is handed to `fail`, which locates it.
   */
  captured (purpose: Purpose, text: string, fail: (err: unknown) => LocatedError): unknown {
    const frame = this.#frames[this.#frames.length - 1]
    let value: unknown
    try {
      if (purpose === KEY) value = JSON.parse(text)
      else if (purpose === ROOT) value = secureParse(text, this.#policy)
      else value = parseProperty(frame!.isArray ? undefined : frame!.key, text, this.#policy)
    } catch (err) {
      throw fail(err)
    }
    if (purpose === KEY) {
      this.#onKey(value as string)
    } else if (purpose === ROOT) {
      this.#nav = N_TRAILING
    } else {
      this.afterValue()
      if (purpose === ENTRY && value !== REMOVED) return [frame!.key, value]
    }
    return value
  }

  /** Where navigation goes once a value in the current frame (or a streamed array) is complete. */
  afterValue (): void {
    const frame = this.#frames[this.#frames.length - 1]
    this.#nav = frame === undefined ? N_TRAILING : frame.isArray ? N_AFTER_VALUE_IN_ARRAY : N_AFTER_VALUE
    if (frame?.isArray === true) frame.count++
  }

  // A value at the top, or in a frame: the next step of the path, the target, or a value off it.
  #value (buf: Buffer, base: number, i: number): number {
    const frames = this.#frames
    const depth = frames.length
    const frame = frames[depth - 1]
    if (frame !== undefined) {
      if (frame.entries) return this.#host.capture(buf, base, i, this.#keyMatches ? ENTRY : OFF_PATH, depth)
      const onPath = frame.isArray ? matches(frame.segment, frame.count) : this.#keyMatches
      if (!onPath) return this.#host.capture(buf, base, i, OFF_PATH, depth)
      frame.matched = true
    }
    const c = buf[i]!
    const last = depth === this.#segments.length
    if (last && !this.#entries) {
      if (c === OPEN_BRACKET) return this.#host.enterTarget(i, depth)
      if (depth === 0) return this.#host.capture(buf, base, i, ROOT, 0)
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      const isArray = c === OPEN_BRACKET
      if (last ? !isArray : acceptsContainer(this.#segments[depth]!, isArray)) {
        this.#pushFrame(isArray, frame !== undefined && !frame.isArray && frame.key === 'constructor', last)
        return i + 1
      }
    }
    if (STARTS_SCALAR[c] === 1 || c === OPEN_BRACKET || c === OPEN_BRACE || c === QUOTE) {
      throw this.#notTarget(foundDetail(describeFirstByte(c), this.#where(depth), last, this.#wildcard), base + i)
    }
    throw invalid(`Unexpected ${describeByte(c)}, expected a value`, base + i)
  }

  #pushFrame (isArray: boolean, isConstructorValue: boolean, entries: boolean): void {
    const segment = entries ? WILDCARD : this.#segments[this.#frames.length]!
    const taken = !isArray && segment === WILDCARD ? new Set<string>() : null
    this.#frames.push({ isArray, isConstructorValue, segment, entries, taken, matched: false, count: 0, key: '' })
    this.#nav = isArray ? N_VALUE_OR_CLOSE_ARRAY : N_KEY_OR_CLOSE
  }

  #closeFrame (offset: number): void {
    const frame = this.#frames.pop()!
    if (!frame.matched && frame.segment !== WILDCARD) {
      const depth = this.#frames.length
      const where = this.#where(depth)
      const detail = frame.isArray
        ? shortArrayDetail(where, frame.count)
        : absentKeyDetail(where === '' ? String(frame.segment) : `${where}.${frame.segment}`, depth === this.#segments.length - 1, this.#wildcard)
      throw this.#notTarget(detail, offset)
    }
    if (frame.entries) this.#host.leaveEntries()
    this.afterValue()
  }

  /** The concrete path of the value the frames up to `depth` are at (`data.3`): keys and indexes. */
  #where (depth: number): string {
    let where = ''
    for (let d = 0; d < depth; d++) {
      const frame = this.#frames[d]!
      where += (d === 0 ? '' : '.') + (frame.isArray ? String(frame.count) : frame.key)
    }
    return where
  }

  #onKey (key: string): void {
    const frames = this.#frames
    const frame = frames[frames.length - 1]!
    const policy = this.#policy
    const at = this.#keyOffset
    frame.key = key
    if (key === '__proto__' && policy.protoAction === 'error') {
      throw forbiddenPropertyError({ offset: at }, 'key "__proto__"')
    }
    if (key === 'prototype' && frame.isConstructorValue && policy.constructorAction !== 'ignore') {
      if (policy.constructorAction === 'error') {
        throw forbiddenPropertyError({ offset: at }, 'key "constructor.prototype"')
      }
      throw this.#notTarget(removedConstructorDetail(this.#where(frames.length - 1)), at)
    }
    const taken = matches(frame.segment, key) && !(key === '__proto__' && policy.protoAction === 'remove')
    if (taken) {
      const twice = frame.taken === null ? frame.matched : frame.taken.has(key)
      if (twice) throw invalid(givenTwiceDetail(key), at)
      frame.taken?.add(key)
    }
    this.#keyMatches = taken
    this.#nav = N_COLON
  }

  #notTarget (detail: string, offset: number): LocatedError {
    return this.#entries
      ? pathNotObjectError(pathLabel(this.#path), detail, { offset })
      : pathNotArrayError(this.#path, detail, { offset })
  }
}

function invalid (detail: string, offset: number): LocatedError {
  return invalidJsonError(detail, { offset })
}
