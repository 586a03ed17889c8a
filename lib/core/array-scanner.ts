// Streams the elements of a JSON array out of a body that arrives in chunks, at JSON.parse speed.
//
// Parsing token by token in JavaScript is an order of magnitude slower than JSON.parse, so this
// scanner never builds values itself. It only finds where elements begin and end (tracking
// strings, escapes and nesting depth with a tight loop over the bytes), checks the structure
// between elements (one comma, JSON whitespace, a closing bracket, nothing after it), and hands
// a run of whole elements to ONE secure parse call, as the text '[' + elements + ']'. A run is cut
// at `maxParseBytes` (V8 gives every string above ~128 KiB its own mapping, which costs more
// than the parse) and at the room left in the current batch.
//
// What is kept across chunks: the bytes of the current run and of the element in progress, in a
// CarryBuffer (a pooled slab, grown only for an element larger than the slab). Never more than
// one run (< maxParseBytes), one partial element (<= maxItemSize) and the current chunk.
// A run lying wholly inside the current chunk is decoded from the chunk, with no copy.
//
// With a `path`, the objects and arrays on the way to the array are walked by a small state
// machine that holds one frame per path segment; every value off the path is captured whole
// (bounded by maxItemSize), parsed to validate it and dropped.

import { integer, REGISTRATION } from '../option-check.js'
import type { BufferPool } from './buffer-pool.js'
import { ARRAY_KEYS, ENGINE_DEFAULTS, pathOption, resolveEngineOptions } from './engine-options.js'
import type { PoisoningAction, SecureParseOptions } from './engine-options.js'
import {
  CarryBuffer,
  emptyBodyError,
  forbiddenPropertyError,
  invalidJsonError,
  isForbiddenPropertyError,
  itemTooLargeError,
  parseFailure,
  pathNotArrayError,
  secureParse,
  secureScan,
  tooDeepDetail
} from './json-text.js'
import type { FaultLocation, LocatedError } from './json-text.js'
import { formatPath } from './path.js'
import type { PathSegment } from './path.js'

export interface JsonScannerOptions {
  /**
   * Dot path of the array to stream (`items`, `data.rows`, `a.0.b`). Without it, the top-level
   * value: an array yields its elements, anything else is one item.
   * @default undefined (top level)
   */
  path?: string
  /**
   * The most items in one `onItems` call.
   * @default 1000
   */
  batchSize?: number
  /**
   * The most bytes one element (or, with a path, one value off the path) may have. Crossing it
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
   * Where carry-over buffers for partial elements come from; `null` allocates them.
   * @default null
   */
  pool?: BufferPool | null
}

// Scanner modes. The first three capture one value; the next two sit between elements of the
// streamed array; NAVIGATE walks everything else (the path, and what follows the array).
const STRING = 0
const CONTAINER = 1
const SCALAR = 2
const BEFORE_ELEMENT = 3
const AFTER_ELEMENT = 4
const NAVIGATE = 5
const CLOSED = 6

// What a captured value is for.
const ELEMENT = 0
const KEY = 1
const OFF_PATH = 2
const ROOT = 3

// NAVIGATE states.
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

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON = 0x3a
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d
const BOM = [0xef, 0xbb, 0xbf]

// Byte classes for the element loop: 1 a quote, 2 an opening bracket, 3 a closing one.
const CONTAINER_CLASS = new Uint8Array(256)
CONTAINER_CLASS[QUOTE] = 1
CONTAINER_CLASS[OPEN_BRACE] = 2
CONTAINER_CLASS[OPEN_BRACKET] = 2
CONTAINER_CLASS[CLOSE_BRACE] = 3
CONTAINER_CLASS[CLOSE_BRACKET] = 3

// Bytes that end a number/true/false/null token. Anything else stays in the token and the parse
// call judges it, so 'tru', '1x' and stray UTF-8 are rejected by JSON.parse itself.
const ENDS_SCALAR = new Uint8Array(256)
for (const byte of [0x20, 0x09, 0x0a, 0x0d, COMMA, COLON, QUOTE, OPEN_BRACE, CLOSE_BRACE, OPEN_BRACKET, CLOSE_BRACKET]) {
  ENDS_SCALAR[byte] = 1
}

// Bytes that may start a number/true/false/null. Checking the first byte keeps a stray byte
// (a BOM, which a lone parse call would strip) from passing as the start of a value.
const STARTS_SCALAR = new Uint8Array(256)
for (const byte of Buffer.from('-0123456789tfn')) STARTS_SCALAR[byte] = 1

const EMPTY = Buffer.alloc(0)

/** Thrown through the scanner when onItems destroyed it: it stops at once, quietly. */
const DESTROYED = Symbol('destroyed by onItems')

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

/** Where the scanner's own errors are reported from, when it locates a fault for another scanner. */
const RELOCATE = Symbol('relocate')
interface RelocatedOptions extends JsonScannerOptions {
  [RELOCATE]?: { offset: number, item: number }
}

function describeFirstByte (byte: number): string {
  if (byte === OPEN_BRACE) return 'an object'
  if (byte === OPEN_BRACKET) return 'an array'
  if (byte === QUOTE) return 'a string'
  if (byte === 0x74 || byte === 0x66) return 'a boolean'
  if (byte === 0x6e) return 'null'
  return 'a number'
}

function describeByte (byte: number): string {
  return byte >= 0x21 && byte < 0x7f ? `'${String.fromCharCode(byte)}'` : `byte 0x${byte.toString(16).padStart(2, '0').toUpperCase()}`
}

function isWhitespace (byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09
}

export class JsonArrayScanner {
  readonly #onItems: (items: unknown[]) => void
  readonly #segments: PathSegment[]
  readonly #path: string
  readonly #batchSize: number
  readonly #maxItemSize: number
  readonly #maxParseBytes: number
  readonly #maxDepth: number
  readonly #policy: SecureParseOptions
  readonly #carry: CarryBuffer
  readonly #offsetShift: number
  readonly #itemShift: number

  #mode = NAVIGATE
  #nav = N_ROOT
  #purpose = ROOT
  #depth = 0
  /** Levels the value being captured may open: maxDepth less the levels around it. */
  #depthRoom = 0
  /** 1 when the previous chunk ended right after a backslash inside a string. */
  #skip = 0
  /** Body offset where the value being captured starts, or -1. */
  #valueStart = -1
  #closeAllowed = true
  #bomPosition = 0
  #sawValue = false

  #runStart = 0
  #runEnd = 0
  #runCount = 0
  #runFirstItem = 0
  /** Elements of the streamed array found so far. */
  #elements = 0
  #batch: unknown[] = []
  #itemCount = 0
  #bytes = 0
  /** Body offset of the first byte in the carry-over. */
  #carryStart = 0

  readonly #frames: PathFrame[] = []
  #key = ''
  #keyMatches = false
  #keyOffset = 0

  constructor (options: JsonScannerOptions, onItems: (items: unknown[]) => void) {
    if (typeof onItems !== 'function') throw new TypeError('JsonArrayScanner needs an onItems callback')
    this.#onItems = onItems
    const checked = resolveEngineOptions(options, ARRAY_KEYS)
    this.#segments = pathOption(REGISTRATION, 'path', options.path)
    this.#path = options.path ?? ''
    this.#batchSize = checked.batchSize
    this.#maxItemSize = checked.maxItemSize
    this.#maxParseBytes = integer(REGISTRATION, 'maxParseBytes', options.maxParseBytes, ENGINE_DEFAULTS.maxParseBytes, { min: 1 })
    this.#maxDepth = checked.maxDepth
    this.#policy = checked.policy
    this.#carry = new CarryBuffer(checked.pool, this.#maxItemSize + this.#maxParseBytes)
    const relocate = (options as RelocatedOptions)[RELOCATE]
    this.#offsetShift = relocate?.offset ?? 0
    this.#itemShift = relocate?.item ?? 0
  }

  /** Bytes written so far. */
  get bytesScanned (): number {
    return this.#bytes
  }

  /** Items handed to onItems so far. */
  get itemCount (): number {
    return this.#itemCount
  }

  write (chunk: Uint8Array): void {
    if (this.#mode === CLOSED) throw new Error('JsonArrayScanner: write() after end(), destroy() or an error')
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    try {
      this.#scan(bytes, this.#bytes)
      this.#bytes += bytes.length
    } catch (err) {
      this.destroy()
      if (err !== DESTROYED) throw err
    }
  }

  end (): void {
    if (this.#mode === CLOSED) throw new Error('JsonArrayScanner: end() after end(), destroy() or an error')
    try {
      this.#finish()
    } catch (err) {
      if (err !== DESTROYED) throw err
    } finally {
      this.destroy()
    }
  }

  destroy (): void {
    this.#mode = CLOSED
    this.#batch = []
    this.#carry.release()
  }

  // The hot path. State lives in fields between calls; the inner loops keep it in locals.
  #scan (buf: Buffer, base: number): void {
    const n = buf.length
    if (n === 0) return
    let i = this.#skip
    this.#skip = 0
    while (i < n) {
      const mode = this.#mode
      if (mode === CONTAINER) {
        let depth = this.#depth
        const room = this.#depthRoom
        let ended = false
        while (i < n) {
          const kind = CONTAINER_CLASS[buf[i++]!]!
          if (kind === 0) continue
          if (kind === 1) {
            while (i < n) {
              const c = buf[i]!
              if (c === QUOTE) break
              i += c === BACKSLASH ? 2 : 1
            }
            if (i >= n) {
              this.#mode = STRING
              this.#skip = i - n
              break
            }
            i++
          } else if (kind === 2) {
            if (++depth > room) {
              this.#depth = depth
              throw this.#settled(buf, base, this.#tooDeep(base + i - 1))
            }
          } else if (--depth === 0) {
            ended = true
            break
          }
        }
        this.#depth = depth
        if (ended) i = this.#valueEnd(buf, base, i)
      } else if (mode === AFTER_ELEMENT) {
        let c = buf[i]!
        while (isWhitespace(c) && ++i < n) c = buf[i]!
        if (i >= n) break
        if (c === COMMA) {
          this.#mode = BEFORE_ELEMENT
          this.#closeAllowed = false
          i++
        } else if (c === CLOSE_BRACKET) {
          i = this.#closeTarget(buf, base, i + 1)
        } else {
          throw this.#settled(buf, base, this.#invalid(`Expected ',' or ']' after an array element, found ${describeByte(c)}`, base + i, this.#elements))
        }
      } else if (mode === BEFORE_ELEMENT) {
        let c = buf[i]!
        while (isWhitespace(c) && ++i < n) c = buf[i]!
        if (i >= n) break
        this.#valueStart = base + i
        this.#purpose = ELEMENT
        if (c === OPEN_BRACE || c === OPEN_BRACKET) {
          this.#depthRoom = this.#maxDepth - this.#frames.length - 1
          if (this.#depthRoom < 1) throw this.#settled(buf, base, this.#tooDeep(base + i))
          this.#depth = 1
          this.#mode = CONTAINER
        } else if (c === QUOTE) {
          this.#depth = 0
          this.#mode = STRING
        } else if (STARTS_SCALAR[c] === 1) {
          this.#mode = SCALAR
        } else if (c === CLOSE_BRACKET && this.#closeAllowed) {
          this.#valueStart = -1
          i = this.#closeTarget(buf, base, i + 1)
          continue
        } else {
          this.#valueStart = -1
          const why = c === CLOSE_BRACKET ? ' (trailing comma)' : c === COMMA ? ' (empty element)' : ''
          throw this.#settled(buf, base, this.#invalid(`Unexpected ${describeByte(c)}${why}, expected an array element`, base + i, this.#elements))
        }
        i++
      } else if (mode === STRING) {
        while (i < n) {
          const c = buf[i]!
          if (c === QUOTE) break
          i += c === BACKSLASH ? 2 : 1
        }
        if (i >= n) {
          this.#skip = i - n
          break
        }
        i++
        if (this.#depth === 0) i = this.#valueEnd(buf, base, i)
        else this.#mode = CONTAINER
      } else if (mode === SCALAR) {
        while (i < n && ENDS_SCALAR[buf[i]!] === 0) i++
        if (i < n) i = this.#valueEnd(buf, base, i)
      } else if (mode === NAVIGATE) {
        i = this.#navigate(buf, base, i)
      } else {
        return
      }
    }
    if (this.#mode !== CLOSED) this.#saveTail(buf, base)
  }

  // A captured value ends at buf[i] (exclusive). Returns where scanning goes on.
  #valueEnd (buf: Buffer, base: number, i: number): number {
    const start = this.#valueStart
    const end = base + i
    this.#valueStart = -1
    if (end - start > this.#maxItemSize) throw this.#settled(buf, base, this.#tooLarge(start))
    if (this.#purpose !== ELEMENT) return this.#offPathValueEnd(buf, base, i, start, end)
    this.#elements++
    this.#mode = AFTER_ELEMENT
    if (this.#runCount > 0 && end - this.#runStart > this.#maxParseBytes) this.#parseRun(buf, base)
    if (this.#runCount === 0) {
      this.#runStart = start
      this.#runFirstItem = this.#elements - 1
    }
    this.#runCount++
    this.#runEnd = end
    if (end - this.#runStart >= this.#maxParseBytes || this.#runCount >= this.#batchSize - this.#batch.length) {
      this.#parseRun(buf, base)
    }
    return i
  }

  #parseRun (buf: Buffer, base: number): void {
    const start = this.#runStart
    const end = this.#runEnd
    const count = this.#runCount
    this.#runCount = 0
    const text = this.#text(buf, base, start, end)
    let items: unknown
    try {
      items = secureParse('[' + text + ']', this.#policy)
    } catch (err) {
      throw this.#runFailure(err, buf, base, start, end, count)
    }
    const values = items as unknown[]
    if (values.length !== count) {
      throw new Error(`nexure bug: found ${count} elements at byte offset ${start} but the parse gave ${values.length}`)
    }
    const batch = this.#batch
    if (batch.length === 0 && count === this.#batchSize) {
      this.#emit(values)
      return
    }
    for (let k = 0; k < count; k++) batch.push(values[k])
    if (batch.length >= this.#batchSize) {
      this.#batch = []
      this.#emit(batch)
    }
  }

  #emit (items: unknown[]): void {
    this.#itemCount += items.length
    this.#onItems(items)
    if (this.#mode === CLOSED) throw DESTROYED
  }

  // The text of body bytes [start, end): in the chunk, or starting in the carry-over (which then
  // takes the chunk's bytes up to `end`, so a multi-byte character split across chunks is whole).
  #text (buf: Buffer, base: number, start: number, end: number): string {
    if (start >= base) return buf.toString('utf8', start - base, end - base)
    const carry = this.#carry
    const carryEnd = this.#carryStart + carry.length
    if (end > carryEnd) carry.append(buf, carryEnd - base, end - base)
    return carry.bytes!.toString('utf8', start - this.#carryStart, end - this.#carryStart)
  }

  // The bytes [start, end) as a view, for locating a fault (after #text for the same range).
  #view (buf: Buffer, base: number, start: number, end: number): Buffer {
    if (start >= base) return buf.subarray(start - base, end - base)
    return this.#carry.bytes!.subarray(start - this.#carryStart, end - this.#carryStart)
  }

  // At the end of a chunk: keep what a later parse call needs, drop the rest.
  #saveTail (buf: Buffer, base: number): void {
    const end = base + buf.length
    const valueStart = this.#valueStart
    if (valueStart >= 0 && end - valueStart > this.#maxItemSize) throw this.#settled(buf, base, this.#tooLarge(valueStart))
    const carry = this.#carry
    const pending = this.#runCount > 0 ? this.#runStart : valueStart
    if (pending < 0) {
      carry.clear()
      this.#carryStart = end
    } else if (pending >= base) {
      carry.clear()
      carry.append(buf, pending - base, buf.length)
      this.#carryStart = pending
    } else {
      carry.drop(pending - this.#carryStart)
      this.#carryStart = pending
      carry.append(buf, pending + carry.length - base, buf.length)
    }
  }

  #closeTarget (buf: Buffer, base: number, i: number): number {
    if (this.#runCount > 0) this.#parseRun(buf, base)
    if (this.#batch.length > 0) {
      const batch = this.#batch
      this.#batch = []
      this.#emit(batch)
    }
    this.#mode = NAVIGATE
    this.#afterValue()
    return i
  }

  // Where NAVIGATE goes once a value in the current frame is complete.
  #afterValue (): void {
    const frame = this.#frames[this.#frames.length - 1]
    this.#nav = frame === undefined ? N_TRAILING : frame.isArray ? N_AFTER_VALUE_IN_ARRAY : N_AFTER_VALUE
    if (frame?.isArray === true) frame.count++
  }

  #startValue (buf: Buffer, base: number, i: number, purpose: number): number {
    const c = buf[i]!
    this.#valueStart = base + i
    this.#purpose = purpose
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      this.#depthRoom = this.#maxDepth - this.#frames.length
      if (this.#depthRoom < 1) throw this.#tooDeep(base + i)
      this.#depth = 1
      this.#mode = CONTAINER
    } else if (c === QUOTE) {
      this.#depth = 0
      this.#mode = STRING
    } else if (STARTS_SCALAR[c] === 1) {
      this.#mode = SCALAR
    } else {
      this.#valueStart = -1
      throw this.#invalid(`Unexpected ${describeByte(c)}, expected a value`, base + i)
    }
    return i + 1
  }

  #enterTarget (i: number): number {
    this.#mode = BEFORE_ELEMENT
    this.#closeAllowed = true
    return i + 1
  }

  // Everything outside the streamed array's elements: byte by byte, but it is only punctuation,
  // whitespace and the start of captured values.
  #navigate (buf: Buffer, base: number, i: number): number {
    const n = buf.length
    for (; i < n; i++) {
      const c = buf[i]!
      if (this.#bomPosition < 3) {
        if (base + i === this.#bomPosition && c === BOM[this.#bomPosition]) {
          this.#bomPosition++
          continue
        }
        if (this.#bomPosition > 0) throw this.#invalid('Invalid UTF-8 byte order mark', 0)
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
            throw this.#invalid(`Expected a property name, found ${describeByte(c)}${why}`, base + i)
          }
          this.#keyOffset = base + i
          return this.#startValue(buf, base, i, KEY)
        case N_COLON:
          if (c !== COLON) throw this.#invalid(`Expected ':' after a property name, found ${describeByte(c)}`, base + i)
          this.#nav = N_VALUE
          break
        case N_VALUE:
          return this.#frameValue(buf, base, i)
        case N_AFTER_VALUE:
          if (c === COMMA) this.#nav = N_KEY
          else if (c === CLOSE_BRACE) this.#closeFrame(base + i)
          else throw this.#invalid(`Expected ',' or '}' after a property value, found ${describeByte(c)}`, base + i)
          break
        case N_VALUE_OR_CLOSE_ARRAY:
          if (c === CLOSE_BRACKET) {
            this.#closeFrame(base + i)
            break
          }
          return this.#frameValue(buf, base, i)
        case N_VALUE_IN_ARRAY:
          if (c === CLOSE_BRACKET) throw this.#invalid('Unexpected \']\' (trailing comma), expected an array element', base + i)
          return this.#frameValue(buf, base, i)
        case N_AFTER_VALUE_IN_ARRAY:
          if (c === COMMA) this.#nav = N_VALUE_IN_ARRAY
          else if (c === CLOSE_BRACKET) this.#closeFrame(base + i)
          else throw this.#invalid(`Expected ',' or ']' after an array element, found ${describeByte(c)}`, base + i)
          break
        default:
          throw this.#invalid(`Unexpected ${describeByte(c)} after the JSON value`, base + i)
      }
    }
    return i
  }

  #rootValue (buf: Buffer, base: number, i: number): number {
    const c = buf[i]!
    const segments = this.#segments
    if (segments.length === 0) {
      if (c === OPEN_BRACKET) return this.#enterTarget(i)
      return this.#startValue(buf, base, i, ROOT)
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
    throw this.#invalid(`Unexpected ${describeByte(c)}, expected a value`, base + i)
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
    this.#afterValue()
  }

  // A value in a frame on the path: the next step of the path, or a value off it.
  #frameValue (buf: Buffer, base: number, i: number): number {
    const frames = this.#frames
    const frame = frames[frames.length - 1]!
    const onPath = frame.isArray ? frame.segment === frame.count : this.#keyMatches
    if (!onPath) return this.#startValue(buf, base, i, OFF_PATH)
    frame.matched = true
    const c = buf[i]!
    if (frames.length === this.#segments.length) {
      if (c === OPEN_BRACKET) return this.#enterTarget(i)
      if (STARTS_SCALAR[c] === 1 || c === OPEN_BRACE || c === QUOTE) throw this.#notArray(`found ${describeFirstByte(c)}`, base + i)
      throw this.#invalid(`Unexpected ${describeByte(c)}, expected a value`, base + i)
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
    throw this.#invalid(`Unexpected ${describeByte(c)}, expected a value`, base + i)
  }

  // A captured key, value off the path, or top-level non-array value is complete.
  #offPathValueEnd (buf: Buffer, base: number, i: number, start: number, end: number): number {
    const text = this.#text(buf, base, start, end)
    const purpose = this.#purpose
    this.#mode = NAVIGATE
    let value: unknown
    try {
      if (purpose === KEY) {
        value = JSON.parse(text)
      } else if (purpose === ROOT) {
        value = secureParse(text, this.#policy)
      } else {
        this.#checkOffPath(text)
      }
    } catch (err) {
      const bytes = this.#view(buf, base, start, end)
      throw this.#relocated(parseFailure(err, bytes, 0, bytes.length, start, 0, {}))
    }
    if (purpose === KEY) {
      this.#onKey(value as string)
    } else if (purpose === ROOT) {
      this.#batch.push(value)
      this.#nav = N_TRAILING
    } else {
      this.#afterValue()
    }
    return i
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
      throw this.#relocated(forbiddenPropertyError({ offset: at }, 'key "__proto__"'))
    }
    if (key === 'prototype' && frame.isConstructorValue && policy.constructorAction !== 'ignore') {
      if (policy.constructorAction === 'error') {
        throw this.#relocated(forbiddenPropertyError({ offset: at }, 'key "constructor.prototype"'))
      }
      throw this.#notArray('the "constructor" object on the path is removed by constructorAction \'remove\'', at)
    }
    const matches = key === frame.segment && !(key === '__proto__' && policy.protoAction === 'remove')
    if (matches && frame.matched) {
      throw this.#invalid(`nexure cannot stream a path given twice: key "${key}" appears again`, at)
    }
    this.#key = key
    this.#keyMatches = matches
    this.#nav = N_COLON
  }

  #finish (): void {
    if (this.#mode === SCALAR && this.#purpose === ROOT) {
      this.#valueEnd(EMPTY, this.#bytes, 0)
    }
    if (this.#mode === NAVIGATE && this.#nav === N_TRAILING) {
      if (this.#batch.length > 0) this.#emit(this.#batch)
      this.#batch = []
      return
    }
    if (this.#mode === NAVIGATE && this.#nav === N_ROOT) {
      if (this.#bomPosition === 1 || this.#bomPosition === 2) throw this.#invalid('Invalid UTF-8 byte order mark', 0)
      if (!this.#sawValue) throw emptyBodyError()
    }
    const mode = this.#mode
    const inArray = mode === BEFORE_ELEMENT || mode === AFTER_ELEMENT || (mode !== NAVIGATE && this.#purpose === ELEMENT)
    throw this.#settled(EMPTY, this.#bytes, this.#invalid('Unexpected end of JSON input', this.#bytes, inArray ? this.#elements : undefined))
  }

  #runFailure (err: unknown, buf: Buffer, base: number, start: number, end: number, count: number): LocatedError {
    const bytes = this.#view(buf, base, start, end)
    const item = this.#runFirstItem
    if (count === 1) return this.#relocated(parseFailure(err, bytes, 0, bytes.length, start, 1, { item }))
    // Several elements: scan them again one per parse call to find the one at fault.
    const options: RelocatedOptions = {
      ...this.#policy,
      maxItemSize: Infinity,
      maxParseBytes: 1,
      batchSize: 1,
      [RELOCATE]: { offset: this.#offsetShift + start - 1, item: this.#itemShift + item }
    }
    const single = new JsonArrayScanner(options, () => {})
    try {
      single.write(Buffer.from('['))
      single.write(bytes)
      single.write(Buffer.from(']'))
      single.end()
    } catch (located) {
      if (located instanceof Error && 'offset' in located) return located as LocatedError
    }
    const detail = isForbiddenPropertyError(err) ? 'forbidden property' : String(err)
    return this.#invalid(detail, start, item)
  }

  // Before reporting a fault found by scanning, parse the elements before it that are still
  // waiting for their parse call: a fault among them comes first in the body, and reporting the
  // first fault keeps the error the same whatever batchSize and maxParseBytes are.
  #settled (buf: Buffer, base: number, err: LocatedError): LocatedError {
    if (this.#runCount > 0) this.#parseRun(buf, base)
    return err
  }

  #relocated (err: LocatedError): LocatedError {
    if (this.#offsetShift === 0 && this.#itemShift === 0) return err
    const location: FaultLocation = { offset: err.offset + this.#offsetShift }
    if (err.item !== undefined) location.item = err.item + this.#itemShift
    const detail = err.message.replace(/ at byte offset \d+(?: \(item \d+\))?$/, '')
    if (err.code === 'FST_NEXURE_FORBIDDEN_PROPERTY') {
      return forbiddenPropertyError(location, detail.replace(/^Object contains forbidden prototype property: ?/, ''))
    }
    return invalidJsonError(detail.replace(/^Invalid JSON body: /, ''), location)
  }

  #invalid (detail: string, offset: number, item?: number): LocatedError {
    return invalidJsonError(detail, {
      offset: offset + this.#offsetShift,
      item: item === undefined ? undefined : item + this.#itemShift
    })
  }

  // The captured value opens one level too many at body offset `offset`.
  #tooDeep (offset: number): LocatedError {
    this.#valueStart = -1
    return this.#invalid(tooDeepDetail(this.#maxDepth), offset, this.#purpose === ELEMENT ? this.#elements : undefined)
  }

  #notArray (detail: string, offset: number): LocatedError {
    return pathNotArrayError(this.#path, detail, { offset: offset + this.#offsetShift })
  }

  #tooLarge (start: number): LocatedError {
    const what = this.#purpose === ELEMENT
      ? 'an array element'
      : this.#purpose === KEY ? 'a property name' : this.#purpose === ROOT ? 'the JSON value' : 'a value off the path'
    const item = this.#purpose === ELEMENT ? this.#elements + this.#itemShift : undefined
    return itemTooLargeError(`${what} starting`, this.#maxItemSize, { offset: start + this.#offsetShift, item })
  }
}
