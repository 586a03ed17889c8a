// The array scanner's path navigator: walks everything of a JSON body that is not an element of
// the streamed array (the objects and arrays on the way to it at `path`, and what follows it).
//
// It holds one frame per path segment entered, and reads byte by byte, but what it reads is only
// punctuation, whitespace and the first byte of values: every value it meets (a key, a value off
// the path, a top-level value that is not an array) is captured whole by the scanner (bounded
// by maxItemSize) and handed back to `captured`, which parses it (keys, the top-level value) or
// validates and drops it (values off the path), under the same prototype-poisoning policy as a
// parse of the whole body. The scanner drives it only outside its element loop.

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
import { emptyBodyError, forbiddenPropertyError, invalidJsonError, pathNotArrayError, type LocatedError } from './fault.js'
import { secureParse, secureScan } from './secure-parse.js'
import { formatPath, type PathSegment } from './path.js'

/** What a value the scanner captures for the navigator is. */
export const KEY = 1
export const OFF_PATH = 2
export const ROOT = 3
export type Purpose = typeof KEY | typeof OFF_PATH | typeof ROOT

/** What the navigator asks of the scanner. */
export interface NavigatorHost {
  /**
   * Captures the value whose first byte is buf[i]; `levels` is how many arrays and objects are
   * open around it. Returns where scanning goes on.
   */
  capture: (buf: Buffer, base: number, i: number, purpose: Purpose, levels: number) => number
  /** The streamed array opens at buf[i], `levels` deep. Returns where scanning goes on. */
  enterTarget: (i: number, levels: number) => number
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
  /** The path segment this frame resolves. */
  readonly segment: PathSegment
  /** The segment was found here (a second occurrence is refused). */
  matched: boolean
  /** Elements seen so far (arrays). */
  count: number
}

export class PathNavigator {
  readonly #host: NavigatorHost
  readonly #segments: PathSegment[]
  readonly #path: string
  readonly #policy: SecureParseOptions
  readonly #frames: PathFrame[] = []
  #nav = N_ROOT
  #bomPosition = 0
  #sawValue = false
  #key = ''
  #keyMatches = false
  #keyOffset = 0

  constructor (host: NavigatorHost, segments: PathSegment[], path: string, policy: SecureParseOptions) {
    this.#host = host
    this.#segments = segments
    this.#path = path
    this.#policy = policy
  }

  /** The whole body has been walked: only whitespace may follow. */
  get finished (): boolean {
    return this.#nav === N_TRAILING
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
          return this.#rootValue(buf, base, i)
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
          return this.#frameValue(buf, base, i)
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
          return this.#frameValue(buf, base, i)
        case N_VALUE_IN_ARRAY:
          if (c === CLOSE_BRACKET) throw invalid('Unexpected \']\' (trailing comma), expected an array element', base + i)
          return this.#frameValue(buf, base, i)
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
   * the top-level value parsed and returned, a value off the path validated and dropped. A parse
   * failure is handed to `fail`, which locates it.
   */
  captured (purpose: Purpose, text: string, fail: (err: unknown) => LocatedError): unknown {
    let value: unknown
    try {
      if (purpose === KEY) value = JSON.parse(text)
      else if (purpose === ROOT) value = secureParse(text, this.#policy)
      else this.#checkOffPath(text)
    } catch (err) {
      throw fail(err)
    }
    if (purpose === KEY) {
      this.#onKey(value as string)
    } else if (purpose === ROOT) {
      this.#nav = N_TRAILING
    } else {
      this.afterValue()
    }
    return value
  }

  /** Where navigation goes once a value in the current frame (or the streamed array) is complete. */
  afterValue (): void {
    const frame = this.#frames[this.#frames.length - 1]
    this.#nav = frame === undefined ? N_TRAILING : frame.isArray ? N_AFTER_VALUE_IN_ARRAY : N_AFTER_VALUE
    if (frame?.isArray === true) frame.count++
  }

  #rootValue (buf: Buffer, base: number, i: number): number {
    const c = buf[i]!
    const segments = this.#segments
    if (segments.length === 0) {
      if (c === OPEN_BRACKET) return this.#host.enterTarget(i, 0)
      return this.#host.capture(buf, base, i, ROOT, 0)
    }
    const first = segments[0]!
    if (c === OPEN_BRACE && typeof first === 'string') {
      this.#pushFrame(false, false)
      return i + 1
    }
    if (c === OPEN_BRACKET && typeof first === 'number') {
      this.#pushFrame(true, false)
      return i + 1
    }
    if (STARTS_SCALAR[c] === 1 || c === OPEN_BRACKET || c === OPEN_BRACE || c === QUOTE) {
      throw this.#notArray(`the top-level value is ${describeFirstByte(c)}`, base + i)
    }
    throw invalid(`Unexpected ${describeByte(c)}, expected a value`, base + i)
  }

  #pushFrame (isArray: boolean, isConstructorValue: boolean): void {
    const segment = this.#segments[this.#frames.length]!
    this.#frames.push({ isArray, isConstructorValue, segment, matched: false, count: 0 })
    this.#nav = isArray ? N_VALUE_OR_CLOSE_ARRAY : N_KEY_OR_CLOSE
  }

  #closeFrame (offset: number): void {
    const frame = this.#frames.pop()!
    if (!frame.matched) {
      const depth = this.#frames.length
      const where = depth === 0 ? 'the top-level array' : `the array at "${formatPath(this.#segments, depth)}"`
      const detail = frame.isArray
        ? `${where} has ${frame.count} element${frame.count === 1 ? '' : 's'}`
        : depth === this.#segments.length - 1
          ? 'the key is absent'
          : `the key "${formatPath(this.#segments, depth + 1)}" is absent`
      throw this.#notArray(detail, offset)
    }
    this.afterValue()
  }

  // A value in a frame on the path: the next step of the path, or a value off it.
  #frameValue (buf: Buffer, base: number, i: number): number {
    const frames = this.#frames
    const frame = frames[frames.length - 1]!
    const onPath = frame.isArray ? frame.segment === frame.count : this.#keyMatches
    if (!onPath) return this.#host.capture(buf, base, i, OFF_PATH, frames.length)
    frame.matched = true
    const c = buf[i]!
    if (frames.length === this.#segments.length) {
      if (c === OPEN_BRACKET) return this.#host.enterTarget(i, frames.length)
      if (STARTS_SCALAR[c] === 1 || c === OPEN_BRACE || c === QUOTE) throw this.#notArray(`found ${describeFirstByte(c)}`, base + i)
      throw invalid(`Unexpected ${describeByte(c)}, expected a value`, base + i)
    }
    const next = this.#segments[frames.length]!
    if (c === OPEN_BRACE && typeof next === 'string') {
      this.#pushFrame(false, !frame.isArray && this.#key === 'constructor')
      return i + 1
    }
    if (c === OPEN_BRACKET && typeof next === 'number') {
      this.#pushFrame(true, false)
      return i + 1
    }
    if (STARTS_SCALAR[c] === 1 || c === OPEN_BRACKET || c === OPEN_BRACE || c === QUOTE) {
      throw this.#notArray(`found ${describeFirstByte(c)} at "${formatPath(this.#segments, frames.length)}"`, base + i)
    }
    throw invalid(`Unexpected ${describeByte(c)}, expected a value`, base + i)
  }

  // A value off the path is dropped; secure-json-parse's policy still applies to it, as it
  // would to the whole body (a removed `__proto__` or `constructor` value is not looked into).
  #checkOffPath (text: string): void {
    const frame = this.#frames[this.#frames.length - 1]!
    const key = frame.isArray ? undefined : this.#key
    const policy = this.#policy
    if (key === '__proto__') {
      if (policy.protoAction === 'remove') JSON.parse(text)
      else secureParse(text, policy)
    } else if (key === 'constructor' && policy.constructorAction !== 'ignore') {
      const value: unknown = JSON.parse(text)
      if (value !== null && typeof value === 'object' && Object.hasOwn(value, 'prototype')) {
        if (policy.constructorAction === 'error') throw new SyntaxError('Object contains forbidden prototype property')
        return
      }
      secureScan(value, policy)
    } else {
      secureParse(text, policy)
    }
  }

  #onKey (key: string): void {
    const frame = this.#frames[this.#frames.length - 1]!
    const policy = this.#policy
    const at = this.#keyOffset
    if (key === '__proto__' && policy.protoAction === 'error') {
      throw forbiddenPropertyError({ offset: at }, 'key "__proto__"')
    }
    if (key === 'prototype' && frame.isConstructorValue && policy.constructorAction !== 'ignore') {
      if (policy.constructorAction === 'error') {
        throw forbiddenPropertyError({ offset: at }, 'key "constructor.prototype"')
      }
      throw this.#notArray('the "constructor" object on the path is removed by constructorAction \'remove\'', at)
    }
    const matches = key === frame.segment && !(key === '__proto__' && policy.protoAction === 'remove')
    if (matches && frame.matched) {
      throw invalid(`nexure cannot stream a path given twice: key "${key}" appears again`, at)
    }
    this.#key = key
    this.#keyMatches = matches
    this.#nav = N_COLON
  }

  #notArray (detail: string, offset: number): LocatedError {
    return pathNotArrayError(this.#path, detail, { offset })
  }
}

function invalid (detail: string, offset: number): LocatedError {
  return invalidJsonError(detail, { offset })
}
