// Selection anywhere in a JSON body, streamed: every outermost value whose path a filter
// accepts is an item (`batches({ filter })`).
//
// stream-json's tokenizer lexes the text and its tokens build the values. Everything that makes
// this safe is nexure's, because stream-json's tokens carry no offsets and its README says it is
// not designed for hostile input:
//
// - A byte-level mirror (`#scan`) reads every chunk before the tokenizer does. It checks the
//   whole JSON grammar as JSON.parse does (structure, strings, escapes, numbers, literals),
//   counts depth against maxDepth, and records where every lexeme starts and ends. With packed
//   tokens only (one token per key, string, number, literal or bracket), the k-th token is the
//   k-th lexeme, so each token gets its byte offsets from the mirror's queue. A fault is
//   reported by the mirror at its exact byte offset; the tokenizer never sees text the mirror
//   refused (before throwing, the text up to the fault is tokenized, so a fault found by the
//   walk earlier in the same chunk is reported first).
// - The walk (`#token`) tracks the path, tests the filter once per value outside the
//   selection, and assembles the selected values itself, defining a `__proto__` key as an own
//   property as JSON.parse does. secure-json-parse's policy is applied as it would be to the
//   whole body: in a selected value by secure-json-parse's own scan; around the selection key
//   by key (a `__proto__` value removed is not walked; an object under a `constructor` key is
//   held back until it ends when constructorAction is 'remove', since a `prototype` key in it
//   removes it whole, and with it what it held).
// - A key given twice in an object around the selection is refused: JSON.parse keeps the last
//   value, where the first one stood, which a stream cannot do once items have gone out.
//
// What is kept across chunks: the mirror's state, the tokenizer's unconsumed tail (at most one
// lexeme, bounded by maxItemSize), the selected value being assembled (bounded by maxItemSize),
// the path (bounded by maxDepth), the keys of the objects around the selection and what a
// `constructor` object holds back (each bounded by maxItemSize).

import { StringDecoder } from 'node:string_decoder'
import { jsonParser } from 'stream-json/core/parser.js'
import type { Token } from 'stream-json/core/parser.js'
import { none } from 'stream-chain/defs.js'
import { FILTER_KEYS, filterOption, type FilterEngineOptions, type SecureParseOptions } from './engine-options.js'
import { REGISTRATION } from '../option-check.js'
import { resolveEngineOptions } from './engine-options.js'
import {
  BACKSLASH,
  BOM,
  CLOSE_BRACE,
  CLOSE_BRACKET,
  COLON,
  COMMA,
  describeByte,
  ENDS_SCALAR,
  isWhitespace,
  OPEN_BRACE,
  OPEN_BRACKET,
  QUOTE
} from './json-bytes.js'
import { tooDeepDetail } from './depth.js'
import { emptyBodyError, forbiddenPropertyError, invalidJsonError, itemTooLargeError, type LocatedError } from './fault.js'
import { secureScan } from './secure-parse.js'

export type { FilterEngineOptions }

// What the mirror expects next.
const E_VALUE = 0
const E_VALUE_OR_CLOSE = 1
const E_KEY = 2
const E_KEY_OR_CLOSE = 3
const E_COLON = 4
const E_AFTER = 5
const E_DONE = 6

// The lexeme the mirror is inside.
const L_NONE = 0
const L_STRING = 1
const L_NUMBER = 2
const L_LITERAL = 3

// Number grammar states (JSON.parse's): after '-', '0', integer digits, '.', fraction digits,
// 'e', the exponent's sign, exponent digits.
const N_SIGN = 1
const N_ZERO = 2
const N_INT = 3
const N_DOT = 4
const N_FRAC = 5
const N_E = 6
const N_ESIGN = 7
const N_EXP = 8
const NUMBER_ENDS_OK = [false, false, true, true, false, true, false, false, true]

const SIMPLE_ESCAPE = new Uint8Array(256)
for (const c of '"\\/bfnrt') SIMPLE_ESCAPE[c.charCodeAt(0)] = 1
const HEX = new Uint8Array(256)
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1
const LITERALS: Record<number, string> = { 0x74: 'true', 0x66: 'false', 0x6e: 'null' }

function isDigit (c: number): boolean {
  return c >= 0x30 && c <= 0x39
}

/** A fault the mirror found: thrown inside `#scan`, turned into an error once the text before it is walked. */
class MirrorFault {
  constructor (readonly detail: string, readonly offset: number, readonly tooDeep = false) {}
}

/** What a `constructor` object around the selection holds back (constructorAction 'remove'). */
interface Hold {
  readonly start: number
  readonly items: unknown[]
  error: LocatedError | null
}

/** An array or object around the selection, being walked. */
interface Frame {
  readonly isArray: boolean
  /** Dotted path of this container ('' for the top-level value). */
  readonly path: string
  /** Segments of its path (0 for the top-level value). */
  readonly depth: number
  /** Objects: under a `constructor` key, where secure-json-parse looks for `prototype`. */
  readonly isConstructorValue: boolean
  readonly hold: Hold | null
  /** Arrays: the index of the next element. */
  index: number
  /** Objects: the current key, and the offset of its lexeme. */
  key: string
  keyOffset: number
  keys: Set<string> | null
  keyChars: number
  /** The value of the current key is not walked: a `__proto__` removed by protoAction 'remove'. */
  drop: boolean
}

type Container = unknown[] | Record<string, unknown>

/** Thrown through the engine when onItems destroyed it: it stops at once, quietly. */
const DESTROYED = Symbol('destroyed by onItems')

export class FilterEngine {
  readonly #onItems: (items: unknown[]) => void
  readonly #batchSize: number
  readonly #maxItemSize: number
  readonly #maxDepth: number
  readonly #policy: SecureParseOptions
  readonly #regex: RegExp | null
  readonly #test: ((path: readonly (string | number)[]) => boolean) | null
  readonly #tokenize = jsonParser({ packValues: true, streamValues: false })
  readonly #decoder = new StringDecoder('utf8')
  #closed = false
  #bytes = 0
  #itemCount = 0
  #batch: unknown[] = []

  // The mirror.
  #expect = E_VALUE
  /** 1 for an array, 0 for an object, one per open level. */
  readonly #levels: number[] = []
  #lex = L_NONE
  #lexIsKey = false
  #lexStart = -1
  #escape = 0
  #number = 0
  #literal = ''
  #literalAt = 0
  #bom = 0
  #sawValue = false
  /** Body offsets where each lexeme not yet tokenized starts and ends (-1 until it ends). */
  #starts: number[] = []
  #ends: number[] = []
  #head = 0
  /** The text handed to the tokenizer starts with the BOM the mirror skipped. */
  #stripBom = false

  // The walk.
  readonly #frames: Frame[] = []
  readonly #segments: Array<string | number> = []
  readonly #holds: Hold[] = []
  /** Items held back in holds, for the index of the next item. */
  #held = 0
  #keyChars = 0
  #skipDepth = 0
  #skipFrame: Frame | null = null
  #skipping = false

  // The selected value being assembled.
  readonly #stack: Container[] = []
  readonly #stackKeys: string[] = []
  #itemStart = -1
  #itemSuspect = false
  #itemUnderConstructor = false

  constructor (options: FilterEngineOptions, onItems: (items: unknown[]) => void) {
    if (typeof onItems !== 'function') throw new TypeError('FilterEngine needs an onItems callback')
    this.#onItems = onItems
    const checked = resolveEngineOptions(options, FILTER_KEYS)
    this.#batchSize = checked.batchSize
    this.#maxItemSize = checked.maxItemSize
    this.#maxDepth = checked.maxDepth
    this.#policy = checked.policy
    const filter = filterOption(REGISTRATION, 'filter', (options as { filter?: unknown } | undefined)?.filter)
    this.#regex = filter instanceof RegExp ? filter : null
    this.#test = filter instanceof RegExp ? null : filter
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
    if (this.#closed) throw new Error('FilterEngine: write() after end(), destroy() or an error')
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    const base = this.#bytes
    try {
      let fault: MirrorFault | null = null
      try {
        this.#scan(bytes, base)
      } catch (err) {
        if (!(err instanceof MirrorFault)) throw err
        fault = err
      }
      if (fault === null) {
        this.#feed(this.#decoder.write(bytes))
        this.#bytes += bytes.length
        this.#checkOpen(this.#bytes)
      } else {
        this.#feed(this.#decoder.write(bytes.subarray(0, Math.max(0, fault.offset - base))))
        this.#checkOpen(fault.offset)
        throw this.#faultError(fault)
      }
    } catch (err) {
      this.destroy()
      if (err !== DESTROYED) throw err
    }
  }

  end (): void {
    if (this.#closed) throw new Error('FilterEngine: end() after end(), destroy() or an error')
    try {
      try {
        this.#scanEnd()
      } catch (err) {
        if (!(err instanceof MirrorFault)) throw err
        this.#feed(this.#decoder.end())
        this.#checkOpen(err.offset)
        throw this.#faultError(err)
      }
      this.#feed(this.#decoder.end())
      this.#flushTokenizer()
      if (this.#batch.length > 0) {
        const batch = this.#batch
        this.#batch = []
        this.#emit(batch)
      }
    } catch (err) {
      if (err !== DESTROYED) throw err
    } finally {
      this.destroy()
    }
  }

  destroy (): void {
    this.#closed = true
    this.#batch = []
    this.#stack.length = 0
    this.#starts = []
    this.#ends = []
  }

  // ---- The mirror ----------------------------------------------------------------------------

  #scan (buf: Buffer, base: number): void {
    const n = buf.length
    let i = 0
    while (i < n) {
      const lex = this.#lex
      if (lex === L_STRING) {
        let escape = this.#escape
        while (i < n) {
          const c = buf[i]!
          if (escape === 0) {
            if (c === QUOTE) break
            if (c === BACKSLASH) escape = 1
            else if (c < 0x20) throw new MirrorFault(`Bad control character ${describeByte(c)} in a string`, base + i)
          } else if (escape === 1) {
            if (c === 0x75) escape = 2
            else if (SIMPLE_ESCAPE[c] === 1) escape = 0
            else throw new MirrorFault(`Bad escaped character ${describeByte(c)} in a string`, base + i)
          } else {
            if (HEX[c] !== 1) throw new MirrorFault(`Bad Unicode escape: ${describeByte(c)} is not a hexadecimal digit`, base + i)
            escape = escape === 5 ? 0 : escape + 1
          }
          i++
        }
        this.#escape = escape
        if (i >= n) break
        i++
        this.#endLexeme(base + i)
        this.#expect = this.#lexIsKey ? E_COLON : this.#afterValue()
        continue
      }
      if (lex === L_NUMBER || lex === L_LITERAL) {
        while (i < n && ENDS_SCALAR[buf[i]!] === 0) {
          this.#scalarByte(buf[i]!, base + i)
          i++
        }
        if (i >= n) break
        this.#endScalar(buf[i]!, base + i)
        continue
      }
      const c = buf[i]!
      if (this.#bom < 3) {
        if (base + i === this.#bom && c === BOM[this.#bom]) {
          this.#bom++
          this.#stripBom = true
          i++
          continue
        }
        if (this.#bom > 0) throw new MirrorFault('Invalid UTF-8 byte order mark', 0)
        this.#bom = 3
      }
      if (isWhitespace(c)) {
        i++
        continue
      }
      this.#structural(c, base + i)
      i++
    }
  }

  // A byte outside any lexeme that is not whitespace.
  #structural (c: number, offset: number): void {
    const expect = this.#expect
    if (expect === E_VALUE || expect === E_VALUE_OR_CLOSE) {
      this.#sawValue = true
      if (c === OPEN_BRACE || c === OPEN_BRACKET) {
        if (this.#levels.length >= this.#maxDepth) throw new MirrorFault(tooDeepDetail(this.#maxDepth), offset, true)
        this.#levels.push(c === OPEN_BRACKET ? 1 : 0)
        this.#bracket(offset)
        this.#expect = c === OPEN_BRACKET ? E_VALUE_OR_CLOSE : E_KEY_OR_CLOSE
        return
      }
      if (c === QUOTE) return this.#startLexeme(L_STRING, false, offset)
      if (c === 0x2d || isDigit(c)) {
        this.#number = c === 0x2d ? N_SIGN : c === 0x30 ? N_ZERO : N_INT
        return this.#startLexeme(L_NUMBER, false, offset)
      }
      const word = LITERALS[c]
      if (word !== undefined) {
        this.#literal = word
        this.#literalAt = 1
        return this.#startLexeme(L_LITERAL, false, offset)
      }
      if (c === CLOSE_BRACKET && expect === E_VALUE_OR_CLOSE) return this.#close(offset)
      const why = c === CLOSE_BRACKET || c === CLOSE_BRACE ? ' (trailing comma)' : c === COMMA ? ' (empty element)' : ''
      throw new MirrorFault(`Unexpected ${describeByte(c)}${why}, expected a value`, offset)
    }
    if (expect === E_KEY || expect === E_KEY_OR_CLOSE) {
      if (c === QUOTE) return this.#startLexeme(L_STRING, true, offset)
      if (c === CLOSE_BRACE && expect === E_KEY_OR_CLOSE) return this.#close(offset)
      throw new MirrorFault(`Expected a property name, found ${describeByte(c)}${c === CLOSE_BRACE ? ' (trailing comma)' : ''}`, offset)
    }
    if (expect === E_COLON) {
      if (c !== COLON) throw new MirrorFault(`Expected ':' after a property name, found ${describeByte(c)}`, offset)
      this.#expect = E_VALUE
      return
    }
    if (expect === E_AFTER) {
      const inArray = this.#levels[this.#levels.length - 1] === 1
      if (c === COMMA) {
        this.#expect = inArray ? E_VALUE : E_KEY
        return
      }
      if (c === (inArray ? CLOSE_BRACKET : CLOSE_BRACE)) return this.#close(offset)
      throw new MirrorFault(inArray
        ? `Expected ',' or ']' after an array element, found ${describeByte(c)}`
        : `Expected ',' or '}' after a property value, found ${describeByte(c)}`, offset)
    }
    throw new MirrorFault(`Unexpected ${describeByte(c)} after the JSON value`, offset)
  }

  #close (offset: number): void {
    this.#levels.pop()
    this.#bracket(offset)
    this.#expect = this.#afterValue()
  }

  #afterValue (): number {
    return this.#levels.length === 0 ? E_DONE : E_AFTER
  }

  #bracket (offset: number): void {
    this.#starts.push(offset)
    this.#ends.push(offset + 1)
  }

  #startLexeme (kind: number, isKey: boolean, offset: number): void {
    this.#lex = kind
    this.#lexIsKey = isKey
    this.#lexStart = offset
    this.#escape = 0
    this.#starts.push(offset)
    this.#ends.push(-1)
  }

  #endLexeme (end: number): void {
    this.#lex = L_NONE
    this.#lexStart = -1
    this.#ends[this.#ends.length - 1] = end
  }

  // One byte of a number or literal (not one that ends it).
  #scalarByte (c: number, offset: number): void {
    if (this.#lex === L_LITERAL) {
      const word = this.#literal
      if (this.#literalAt >= word.length || word.charCodeAt(this.#literalAt) !== c) {
        throw new MirrorFault(`Unexpected ${describeByte(c)} in the literal '${word}'`, offset)
      }
      this.#literalAt++
      return
    }
    const state = this.#number
    let next = 0
    const digit = isDigit(c)
    const e = c === 0x65 || c === 0x45
    switch (state) {
      case N_SIGN: next = c === 0x30 ? N_ZERO : digit ? N_INT : 0; break
      case N_ZERO: next = c === 0x2e ? N_DOT : e ? N_E : 0; break
      case N_INT: next = digit ? N_INT : c === 0x2e ? N_DOT : e ? N_E : 0; break
      case N_DOT: next = digit ? N_FRAC : 0; break
      case N_FRAC: next = digit ? N_FRAC : e ? N_E : 0; break
      case N_E: next = c === 0x2b || c === 0x2d ? N_ESIGN : digit ? N_EXP : 0; break
      case N_ESIGN: next = digit ? N_EXP : 0; break
      case N_EXP: next = digit ? N_EXP : 0; break
    }
    if (next === 0) throw new MirrorFault(`Unexpected ${describeByte(c)} in a number`, offset)
    this.#number = next
  }

  // A number or literal ends at `offset` (a byte that ends scalars, or the end of the body).
  #endScalar (c: number | undefined, offset: number): void {
    const complete = this.#lex === L_LITERAL ? this.#literalAt === this.#literal.length : NUMBER_ENDS_OK[this.#number] === true
    if (!complete) {
      const what = this.#lex === L_LITERAL ? `the literal '${this.#literal}'` : 'a number'
      throw new MirrorFault(c === undefined ? `Unexpected end of JSON input in ${what}` : `Unexpected ${describeByte(c)} in ${what}`, offset)
    }
    this.#endLexeme(offset)
    this.#expect = this.#afterValue()
  }

  #scanEnd (): void {
    const end = this.#bytes
    if (this.#lex === L_NUMBER || this.#lex === L_LITERAL) this.#endScalar(undefined, end)
    if (this.#expect === E_DONE) return
    if (!this.#sawValue && this.#lex === L_NONE) {
      if (this.#bom === 1 || this.#bom === 2) throw new MirrorFault('Invalid UTF-8 byte order mark', 0)
      throw emptyBodyError()
    }
    throw new MirrorFault('Unexpected end of JSON input', end)
  }

  // ---- Tokens --------------------------------------------------------------------------------

  #feed (text: string): void {
    if (text.length === 0) return
    if (this.#stripBom) {
      this.#stripBom = false
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
      if (text.length === 0) return
    }
    this.#take(this.#tokenized(text))
  }

  #flushTokenizer (): void {
    this.#take(this.#tokenized(none))
  }

  // The mirror accepted this text already, so the tokenizer should not fail on it; if it does,
  // the fault is still reported as the body's, at the end of what was read.
  #tokenized (text: string | typeof none): unknown {
    try {
      return this.#tokenize(text as string)
    } catch (err) {
      throw invalidJsonError(`stream-json refused the text (${(err as Error).message})`, { offset: this.#bytes })
    }
  }

  #take (out: unknown): void {
    if (out === none || out === undefined) return
    const tokens = (out as { values: Token[] }).values
    for (let k = 0; k < tokens.length; k++) this.#token(tokens[k]!)
    // Offsets of lexemes already walked are dropped now and then, not one by one.
    if (this.#head > 1024 || this.#head === this.#starts.length) {
      this.#starts.splice(0, this.#head)
      this.#ends.splice(0, this.#head)
      this.#head = 0
    }
  }

  #token (token: Token): void {
    const k = this.#head++
    const start = this.#starts[k]
    const end = this.#ends[k]
    if (start === undefined || end === undefined || end < 0) {
      throw new Error(`nexure bug: token ${token.name} has no lexeme (${k} of ${this.#starts.length})`)
    }
    if (this.#stack.length > 0) return this.#assemble(token, end)
    if (this.#skipping) return this.#skip(token, start, end)
    const name = token.name
    const frame = this.#frames[this.#frames.length - 1]
    if (name === 'endObject' || name === 'endArray') return this.#closeFrame()
    if (end - start > this.#maxItemSize) throw this.#lexemeTooLarge(name, start)
    if (name === 'keyValue') return this.#key(frame!, token.value, start)
    // A value starts: the top-level one, or one in the frame on top.
    const isContainer = name === 'startObject' || name === 'startArray'
    let path = ''
    if (frame !== undefined) {
      if (frame.drop) {
        frame.drop = false
        if (isContainer) {
          this.#skipping = true
          this.#skipDepth = 1
          this.#skipFrame = null
        } else {
          this.#next(frame)
        }
        return
      }
      const segment = frame.isArray ? frame.index : frame.key
      this.#segments.push(segment)
      if (this.#regex !== null) path = frame.depth === 0 ? String(segment) : frame.path + '.' + segment
    }
    const selected = this.#regex !== null ? this.#regex.test(path) : this.#test!(this.#segments)
    if (selected) {
      if (frame !== undefined) this.#segments.pop()
      this.#itemUnderConstructor = frame !== undefined && !frame.isArray && frame.key === 'constructor'
      if (isContainer) {
        this.#itemStart = start
        this.#itemSuspect = false
        this.#stack.push(name === 'startArray' ? [] : {})
        this.#stackKeys.push('')
      } else {
        this.#finishItem(scalar(token), start, end)
        this.#next(frame)
      }
      return
    }
    if (!isContainer) {
      if (frame !== undefined) this.#segments.pop()
      this.#next(frame)
      return
    }
    const isArray = name === 'startArray'
    const isConstructorValue = !isArray && frame !== undefined && !frame.isArray && frame.key === 'constructor'
    const hold = isConstructorValue && this.#policy.constructorAction === 'remove' ? { start, items: [], error: null } : null
    if (hold !== null) this.#holds.push(hold)
    this.#frames.push({
      isArray, path, depth: this.#segments.length, isConstructorValue, hold,
      index: 0, key: '', keyOffset: 0, keys: isArray ? null : new Set(), keyChars: 0, drop: false
    })
  }

  // A key of an object around the selection.
  #key (frame: Frame, key: string, offset: number): void {
    const keys = frame.keys!
    frame.key = key
    frame.keyOffset = offset
    if (keys.has(key)) {
      this.#fail(invalidJsonError(`nexure cannot stream a selection out of an object with a key given twice: "${key}" appears again (JSON.parse would keep only its last value)`, { offset }))
    }
    keys.add(key)
    frame.keyChars += key.length
    this.#keyChars += key.length
    if (this.#keyChars > this.#maxItemSize) {
      throw itemTooLargeError('the keys kept of the objects around the selection (to refuse a key given twice), at the key', this.#maxItemSize, { offset })
    }
    const policy = this.#policy
    if (key === '__proto__' && policy.protoAction !== 'ignore') {
      if (policy.protoAction === 'error') this.#fail(forbiddenPropertyError({ offset }, 'key "__proto__"'))
      else frame.drop = true
    } else if (key === 'prototype' && frame.isConstructorValue && policy.constructorAction !== 'ignore') {
      if (policy.constructorAction === 'error') {
        this.#fail(forbiddenPropertyError({ offset }, 'key "constructor.prototype"'))
      } else {
        // The whole `constructor` object goes, and what it held back with it.
        this.#skipping = true
        this.#skipDepth = 1
        this.#skipFrame = frame
      }
    }
  }

  // The value after the current key or element was taken or passed over.
  #next (frame: Frame | undefined): void {
    if (frame?.isArray === true) frame.index++
  }

  #closeFrame (): void {
    const frame = this.#frames.pop()!
    if (frame.depth > 0) this.#segments.pop()
    this.#keyChars -= frame.keyChars
    const hold = frame.hold
    if (hold !== null) {
      this.#holds.pop()
      this.#held -= hold.items.length
      if (hold.error !== null) this.#fail(hold.error)
      for (const item of hold.items) this.#out(item)
    }
    this.#next(this.#frames[this.#frames.length - 1])
  }

  // A token inside a value that is not walked (a removed `__proto__` value, or the rest of a
  // removed `constructor` object).
  #skip (token: Token, start: number, end: number): void {
    const name = token.name
    if (end - start > this.#maxItemSize) throw this.#lexemeTooLarge(name, start)
    if (name === 'startObject' || name === 'startArray') this.#skipDepth++
    else if (name === 'endObject' || name === 'endArray') this.#skipDepth--
    if (this.#skipDepth > 0) return
    this.#skipping = false
    const removed = this.#skipFrame
    this.#skipFrame = null
    if (removed === null) {
      this.#next(this.#frames[this.#frames.length - 1])
      return
    }
    this.#frames.pop()
    this.#segments.pop()
    this.#keyChars -= removed.keyChars
    this.#holds.pop()
    this.#held -= removed.hold!.items.length
    this.#next(this.#frames[this.#frames.length - 1])
  }

  // A token of the selected value being assembled.
  #assemble (token: Token, end: number): void {
    const stack = this.#stack
    const name = token.name
    let value: unknown
    switch (name) {
      case 'startObject':
      case 'startArray':
        stack.push(name === 'startArray' ? [] : {})
        this.#stackKeys.push('')
        return
      case 'keyValue':
        this.#stackKeys[stack.length - 1] = token.value
        if (token.value === '__proto__' || token.value === 'constructor') this.#itemSuspect = true
        return
      case 'endObject':
      case 'endArray':
        value = stack.pop()
        this.#stackKeys.pop()
        if (stack.length === 0) {
          this.#finishItem(value, this.#itemStart, end)
          this.#itemStart = -1
          this.#next(this.#frames[this.#frames.length - 1])
          return
        }
        break
      default:
        value = scalar(token)
    }
    const top = stack[stack.length - 1]!
    if (Array.isArray(top)) {
      top.push(value)
      return
    }
    const key = this.#stackKeys[stack.length - 1]!
    // JSON.parse makes `__proto__` an own property; an assignment would set the prototype.
    if (key === '__proto__') Object.defineProperty(top, key, { value, writable: true, enumerable: true, configurable: true })
    else top[key] = value
  }

  // A selected value is complete: checked as secure-json-parse would check it inside the whole body.
  #finishItem (value: unknown, start: number, end: number): void {
    const item = this.#itemCount + this.#batch.length + this.#held
    if (end - start > this.#maxItemSize) throw this.#itemTooLarge(start, item)
    const policy = this.#policy
    if (this.#itemUnderConstructor && policy.constructorAction !== 'ignore' && value !== null && typeof value === 'object' && Object.hasOwn(value, 'prototype')) {
      if (policy.constructorAction === 'error') this.#fail(forbiddenPropertyError({ offset: start, item }, 'key "constructor.prototype"'))
      return
    }
    if (this.#itemSuspect) {
      this.#itemSuspect = false
      try {
        secureScan(value, policy)
      } catch {
        this.#fail(forbiddenPropertyError({ offset: start, item }))
        return
      }
    }
    this.#out(value)
  }

  // An item goes to the innermost hold, or out.
  #out (value: unknown): void {
    const hold = this.#holds[this.#holds.length - 1]
    if (hold !== undefined) {
      hold.items.push(value)
      this.#held++
      return
    }
    const batch = this.#batch
    batch.push(value)
    if (batch.length >= this.#batchSize) {
      this.#batch = []
      this.#emit(batch)
    }
  }

  // A refusal that a removal may still cancel: inside a held `constructor` object it waits for
  // the object's end (secure-json-parse never looks into an object it removed).
  #fail (error: LocatedError): void {
    const hold = this.#holds[this.#holds.length - 1]
    if (hold === undefined) throw error
    hold.error ??= error
  }

  #emit (items: unknown[]): void {
    this.#itemCount += items.length
    this.#onItems(items)
    if (this.#closed) throw DESTROYED
  }

  // ---- Limits and faults ---------------------------------------------------------------------

  // What is open at body offset `at` must still fit: the selected value, the held `constructor`
  // objects, and the lexeme the tokenizer holds.
  #checkOpen (at: number): void {
    if (this.#itemStart >= 0 && at - this.#itemStart > this.#maxItemSize) {
      throw this.#itemTooLarge(this.#itemStart, this.#itemCount + this.#batch.length + this.#held)
    }
    for (const hold of this.#holds) {
      if (at - hold.start > this.#maxItemSize) {
        throw itemTooLargeError('an object under a "constructor" key, held back until it ends (constructorAction \'remove\'), starting', this.#maxItemSize, { offset: hold.start })
      }
    }
    if (this.#itemStart < 0 && this.#lexStart >= 0 && at - this.#lexStart > this.#maxItemSize) {
      throw this.#lexemeTooLarge(this.#lex === L_STRING ? (this.#lexIsKey ? 'keyValue' : 'stringValue') : 'numberValue', this.#lexStart)
    }
  }

  #faultError (fault: MirrorFault | LocatedError): LocatedError {
    if (!(fault instanceof MirrorFault)) return fault
    const item = fault.tooDeep && this.#itemStart >= 0 ? this.#itemCount + this.#batch.length + this.#held : undefined
    return invalidJsonError(fault.detail, { offset: fault.offset, item })
  }

  #itemTooLarge (start: number, item: number): LocatedError {
    return itemTooLargeError('the selected value starting', this.#maxItemSize, { offset: start, item })
  }

  #lexemeTooLarge (name: string, start: number): LocatedError {
    const what = name === 'keyValue' ? 'a property name' : name === 'stringValue' ? 'a string' : 'a number'
    return itemTooLargeError(`${what} starting`, this.#maxItemSize, { offset: start })
  }
}

function scalar (token: Token): unknown {
  switch (token.name) {
    case 'stringValue': return token.value
    case 'numberValue': return Number(token.value)
    case 'trueValue': return true
    case 'falseValue': return false
    case 'nullValue': return null
    default: throw new Error(`nexure bug: unexpected token ${token.name} for a value`)
  }
}
