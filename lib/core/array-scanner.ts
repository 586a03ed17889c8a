// Streams the elements of a JSON array out of a body that arrives in chunks, at JSON.parse speed.
//
// Parsing token by token in JavaScript is an order of magnitude slower than JSON.parse, so this
// scanner never builds values itself. It only finds where elements begin and end (tracking
// strings, escapes and nesting depth with a tight loop over the bytes), checks the structure
// between elements (one comma, JSON whitespace, a closing bracket, nothing after it), and hands
// a run of whole elements to ONE secure parse call (pending-run.ts, which also keeps the bytes a
// run and the element in progress need across chunks). A run is cut at `maxParseBytes` (V8
// gives every string above ~128 KiB its own mapping, which costs more than the parse) and at
// the room left in the batch being filled (batcher.ts), in items or in bytes, so that a full
// run is a batch as it is.
//
// Walking the bytes costs a third of the engine's time. Where an element is an object (or an
// array), the scanner first guesses instead: the elements run from its '{' to the last '},'
// (from its '[' to the last '],') of the window after it (maxParseBytes, at most maxItemSize),
// found by a native `lastIndexOf`, and those bytes are parsed with the run before them,
// unwalked. A guess that parses is right: a '},' inside a string or a nested value leaves the
// text unbalanced, which JSON.parse refuses; the parsed values' depth is checked, and no element
// can be larger than the window. A guess that fails (or a fault, a poisoned key or a value too
// deep) costs one parse call and the scanner walks those bytes as before, to report the fault
// where it is; after MAX_MISSED_GUESSES, it stops guessing. A 5 MB array of rows: 1.26-1.30x
// the engine that walks every byte (Node 20, same process, alternating rounds).
//
// Everything that is not an element of a streamed array (the path to it, what follows it, and an
// object streamed as entries) is walked by the PathNavigator (path-navigator.ts), which this
// scanner drives only outside its element loop; the values the navigator meets are captured here
// and handed back to it.

import { boolean, integer, REGISTRATION } from '../option-check.js'
import { ARRAY_KEYS, ENGINE_DEFAULTS, pathOption, resolveEngineOptions } from './engine-options.js'
import type { JsonScannerOptions, SecureParseOptions } from './engine-options.js'

export type { JsonScannerOptions }
import {
  BACKSLASH,
  CLOSE_BRACKET,
  COMMA,
  CONTAINER_CLASS,
  describeByte,
  EMPTY,
  ENDS_SCALAR,
  isWhitespace,
  OPEN_BRACE,
  OPEN_BRACKET,
  QUOTE,
  STARTS_SCALAR
} from './json-bytes.js'
import { Batcher, DESTROYED } from './batcher.js'
import { tooDeepDetail } from './depth.js'
import { invalidJsonError, itemTooLargeError, parseFailure, type LocatedError } from './fault.js'
import { REMOVED } from './secure-parse.js'
import { PendingRun } from './pending-run.js'
import { ENTRY, PathNavigator, ROOT, type NavigatorHost, type Purpose } from './path-navigator.js'

// Scanner modes. The first three capture one value; the next two sit between elements of the
// streamed array; NAVIGATE walks everything else (the path, and what follows the array).
const STRING = 0
const CONTAINER = 1
const SCALAR = 2
const BEFORE_ELEMENT = 3
const AFTER_ELEMENT = 4
const NAVIGATE = 5
const CLOSED = 6

// What a captured value is for: an element of a streamed array, or one of the navigator's.
const ELEMENT = 0
const WHAT = ['an array element', 'a property name', 'a value off the path', 'the JSON value', 'an entry value']

const NO_ROOT = Symbol('no top-level value yet')

// A guessed run of objects ends at a '}' followed by a comma, one of arrays at a ']'; guesses
// stop after this many that missed.
const OBJECT_THEN_COMMA = Buffer.from('},')
const ARRAY_THEN_COMMA = Buffer.from('],')
const MAX_MISSED_GUESSES = 8

export class JsonArrayScanner {
  readonly #batcher: Batcher
  readonly #maxItemSize: number
  readonly #maxParseBytes: number
  readonly #maxDepth: number
  readonly #policy: SecureParseOptions

  readonly #navigator: PathNavigator
  #mode = NAVIGATE
  #purpose: number = ROOT
  #depth = 0
  /** Levels the value being captured may open: maxDepth less the levels around it. */
  #depthRoom = 0
  /** 1 when the previous chunk ended right after a backslash inside a string. */
  #skip = 0
  /** Body offset where the value being captured starts, or -1. */
  #valueStart = -1
  #closeAllowed = true
  /** Levels an element of the streamed array may open: maxDepth less the levels around the array. */
  #elementRoom = 0

  readonly #run: PendingRun
  /** The longest run of elements parsed on a guess: maxParseBytes, and no more than maxItemSize. */
  readonly #guessWindow: number
  /** Body offset before which no guess is tried (the scanner walks those bytes). */
  #guessFrom = 0
  #missedGuesses = 0
  /** Elements of the streamed array found so far. */
  #elements = 0
  /** The top-level value when it is not an array: the one item, handed out at the end. */
  #root: unknown = NO_ROOT
  #bytes = 0

  constructor (options: JsonScannerOptions, onItems: (items: unknown[]) => void) {
    if (typeof onItems !== 'function') throw new TypeError('JsonArrayScanner needs an onItems callback')
    const checked = resolveEngineOptions(options, ARRAY_KEYS)
    this.#batcher = new Batcher(checked.batchSize, checked.batchBytes, onItems, () => this.#mode === CLOSED)
    this.#maxItemSize = checked.maxItemSize
    this.#maxParseBytes = integer(REGISTRATION, 'maxParseBytes', options.maxParseBytes, ENGINE_DEFAULTS.maxParseBytes, { min: 1 })
    this.#maxDepth = checked.maxDepth
    this.#policy = checked.policy
    this.#run = new PendingRun(checked.pool, this.#maxItemSize + this.#maxParseBytes, this.#policy)
    this.#guessWindow = Math.min(this.#maxParseBytes, this.#maxItemSize)
    const host: NavigatorHost = {
      capture: (buf, base, i, purpose, levels) => this.#capture(buf, base, i, purpose, levels),
      enterTarget: (i, levels) => this.#enterTarget(i, levels),
      leaveEntries: () => { if (!this.#navigator.repeats) this.#batcher.flush() }
    }
    const entries = boolean(REGISTRATION, 'entries', options.entries, false)
    this.#navigator = new PathNavigator(host, pathOption(REGISTRATION, 'path', options.path), options.path ?? '', this.#policy, entries)
  }

  /** Bytes written so far. */
  get bytesScanned (): number {
    return this.#bytes
  }

  /** Items handed to onItems so far. */
  get itemCount (): number {
    return this.#batcher.emitted
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
    this.#batcher.clear()
    this.#root = NO_ROOT
    this.#run.release()
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
        if ((c === OPEN_BRACE || c === OPEN_BRACKET) && base + i >= this.#guessFrom && this.#elementRoom >= 1) {
          const end = this.#parseGuessed(buf, base, i, c === OPEN_BRACE ? OBJECT_THEN_COMMA : ARRAY_THEN_COMMA)
          if (end !== -1) {
            i = end
            continue
          }
        }
        this.#valueStart = base + i
        this.#purpose = ELEMENT
        if (c === OPEN_BRACE || c === OPEN_BRACKET) {
          this.#depthRoom = this.#elementRoom
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
        i = this.#navigator.navigate(buf, base, i)
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
    const run = this.#run
    if (run.count > 0 && end - run.start > this.#maxParseBytes) this.#parseRun(buf, base)
    run.add(start, end, this.#elements - 1)
    if (end - run.start >= this.#maxParseBytes || run.count >= this.#batcher.room || end - run.start >= this.#batcher.byteRoom) {
      this.#parseRun(buf, base)
    }
    return i
  }

  #parseRun (buf: Buffer, base: number): void {
    const run = this.#run
    const bytes = run.end - run.start
    this.#batcher.pushRun(run.parse(buf, base), bytes)
  }

  // Elements from the '{' (or '[') at buf[i] to the last '},' ('],') of the window after it, parsed
  // with the run before them in one call, no byte of them walked (see the top of the file).
  // Returns where scanning goes on (the comma after them), or -1 when the chunk has no such
  // '},' or the guess did not parse, and the scanner walks those bytes itself.
  #parseGuessed (buf: Buffer, base: number, i: number, needle: Buffer): number {
    const run = this.#run
    const pending = run.count
    const room = Math.min(this.#guessWindow, this.#maxParseBytes - (pending > 0 ? base + i - run.start : 0))
    const limit = Math.min(buf.length, i + room)
    const close = limit - 2 < i ? -1 : buf.lastIndexOf(needle, limit - 2)
    if (close < i) {
      this.#guessFrom = base + limit
      return -1
    }
    const end = close + 1
    const values = run.parseGuess(buf, base, base + i, base + end, this.#elementRoom + 1)
    if (values === null) {
      // A '},' inside a string or a nested object, a fault or a value too deep: the scanner
      // walks past it (and reports the fault where it is). After a few, it walks every byte.
      this.#guessFrom = ++this.#missedGuesses >= MAX_MISSED_GUESSES ? Infinity : base + end
      return -1
    }
    this.#elements += values.length - pending
    const batcher = this.#batcher
    // The bytes of a guessed window are shared out evenly among its elements (nothing walked
    // them), and the window is cut where the batch being filled runs out of room in either unit.
    const perValue = (base + end - (pending > 0 ? run.start : base + i)) / values.length
    for (let from = 0; from < values.length;) {
      const take = Math.min(batcher.room, values.length - from, Math.ceil(batcher.byteRoom / perValue))
      batcher.pushRun(take === values.length ? values : values.slice(from, from + take), take * perValue)
      from += take
    }
    this.#mode = AFTER_ELEMENT
    return end
  }

  // At the end of a chunk: keep what a later parse call needs, drop the rest.
  #saveTail (buf: Buffer, base: number): void {
    const valueStart = this.#valueStart
    if (valueStart >= 0 && base + buf.length - valueStart > this.#maxItemSize) throw this.#settled(buf, base, this.#tooLarge(valueStart))
    this.#run.keepTail(buf, base, valueStart)
  }

  // A streamed array ends. Its last batch goes out at once (as the entries object's does) unless
  // a `*` may reach another one.
  #closeTarget (buf: Buffer, base: number, i: number): number {
    if (this.#run.count > 0) this.#parseRun(buf, base)
    if (!this.#navigator.repeats) this.#batcher.flush()
    this.#mode = NAVIGATE
    this.#navigator.afterValue()
    return i
  }

  // The navigator met a value to capture whole (a key, a value off the path, a top-level value).
  #capture (buf: Buffer, base: number, i: number, purpose: Purpose, levels: number): number {
    const c = buf[i]!
    this.#valueStart = base + i
    this.#purpose = purpose
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      this.#depthRoom = this.#maxDepth - levels
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

  #enterTarget (i: number, levels: number): number {
    this.#elementRoom = this.#maxDepth - levels - 1
    this.#mode = BEFORE_ELEMENT
    this.#closeAllowed = true
    return i + 1
  }

  // A value captured for the navigator is complete; the top-level value and entries are items.
  #offPathValueEnd (buf: Buffer, base: number, i: number, start: number, end: number): number {
    const text = this.#run.text(buf, base, start, end)
    const purpose = this.#purpose as Purpose
    this.#mode = NAVIGATE
    const value = this.#navigator.captured(purpose, text, err => {
      const bytes = this.#run.view(buf, base, start, end)
      return parseFailure(err, bytes, 0, bytes.length, start, 0, { item: this.#itemIndex() })
    })
    if (purpose === ROOT) this.#root = value
    if (purpose !== ENTRY || value === REMOVED) return i
    this.#elements++
    this.#batcher.push(value, end - start)
    return i
  }

  #finish (): void {
    if (this.#mode === SCALAR && this.#purpose === ROOT) {
      this.#valueEnd(EMPTY, this.#bytes, 0)
    }
    if (this.#mode === NAVIGATE && this.#navigator.finished) {
      if (this.#root !== NO_ROOT) this.#batcher.push(this.#root, 0)
      this.#batcher.flush()
      return
    }
    if (this.#mode === NAVIGATE) {
      const fault = this.#navigator.emptyBodyFault()
      if (fault !== null) throw fault
    }
    const mode = this.#mode
    const inArray = mode === BEFORE_ELEMENT || mode === AFTER_ELEMENT || (mode !== NAVIGATE && this.#purpose === ELEMENT)
    throw this.#settled(EMPTY, this.#bytes, this.#invalid('Unexpected end of JSON input', this.#bytes, inArray ? this.#elements : undefined))
  }

  // Before reporting a fault found by scanning, parse the elements before it that are still
  // waiting for their parse call: a fault among them comes first in the body, and reporting the
  // first fault keeps the error the same whatever batchSize and maxParseBytes are.
  #settled (buf: Buffer, base: number, err: LocatedError): LocatedError {
    if (this.#run.count > 0) this.#parseRun(buf, base)
    return err
  }

  #invalid (detail: string, offset: number, item?: number): LocatedError {
    return invalidJsonError(detail, { offset, item })
  }

  // The captured value opens one level too many at body offset `offset`.
  #tooDeep (offset: number): LocatedError {
    this.#valueStart = -1
    return this.#invalid(tooDeepDetail(this.#maxDepth), offset, this.#itemIndex())
  }

  #tooLarge (start: number): LocatedError {
    return itemTooLargeError(`${WHAT[this.#purpose]!} starting`, this.#maxItemSize, { offset: start, item: this.#itemIndex() })
  }

  /** The index of the item being captured, or undefined when it is not one (a key, a value off the path). */
  #itemIndex (): number | undefined {
    return this.#purpose === ELEMENT || this.#purpose === ENTRY ? this.#elements : undefined
  }
}
