// The FilterEngine's byte mirror: reads every chunk before stream-json's tokenizer does, and
// checks the whole JSON grammar as JSON.parse does (structure, strings, escapes, numbers,
// literals, a leading BOM), counts depth against maxDepth, and records where every lexeme starts
// and ends. stream-json's tokens carry no offsets; with packed tokens (one token per key, string,
// number, literal or bracket) the k-th token is the k-th lexeme, so the engine takes each
// token's byte offsets from this queue (`take`). A fault is a MirrorFault at its exact byte
// offset, thrown before the tokenizer sees the text.
//
// What is kept across chunks: the grammar state (what is expected next, one entry per open
// level, bounded by maxDepth; the lexeme in progress) and the offsets of lexemes not yet taken
// (those of at most one chunk, as the engine takes them after each write, and drops them in
// bulk with `compact`).

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
import { emptyBodyError } from './fault.js'

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


/** A fault the mirror found: turned into a located error by the engine once the text before it is walked. */
export class MirrorFault {
  constructor (readonly detail: string, readonly offset: number, readonly tooDeep = false) {}
}

export class ByteMirror {
  readonly #maxDepth: number
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
  /** Body offsets where each lexeme not yet taken starts and ends (-1 until it ends). */
  #starts: number[] = []
  #ends: number[] = []
  #head = 0
  /** The lexeme `take` moved to. */
  start = 0
  end = 0

  constructor (maxDepth: number) {
    this.#maxDepth = maxDepth
  }

  /** Where the lexeme in progress (a string, number or literal) started, or -1. */
  get openLexemeStart (): number {
    return this.#lexStart
  }

  /** The token name of the lexeme in progress, for a message. */
  get openLexemeName (): string {
    return this.#lex === L_STRING ? (this.#lexIsKey ? 'keyValue' : 'stringValue') : 'numberValue'
  }

  /** Moves `start` and `end` to the next lexeme's offsets, for the next token. */
  take (tokenName: string): void {
    const k = this.#head++
    const start = this.#starts[k]
    const end = this.#ends[k]
    if (start === undefined || end === undefined || end < 0) {
      throw new Error(`nexure bug: token ${tokenName} has no lexeme (${k} of ${this.#starts.length})`)
    }
    this.start = start
    this.end = end
  }

  /** Drops the offsets of lexemes already taken, now and then rather than one by one. */
  compact (): void {
    if (this.#head > 1024 || this.#head === this.#starts.length) {
      this.#starts.splice(0, this.#head)
      this.#ends.splice(0, this.#head)
      this.#head = 0
    }
  }

  clear (): void {
    this.#starts = []
    this.#ends = []
    this.#head = 0
  }

  /** Reads body bytes buf, the first at offset `base`; throws a MirrorFault at a fault. */
  scan (buf: Buffer, base: number): void {
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

  /** The body ended at offset `end`: what is open is a fault. */
  finish (end: number): void {
    if (this.#lex === L_NUMBER || this.#lex === L_LITERAL) this.#endScalar(undefined, end)
    if (this.#expect === E_DONE) return
    if (!this.#sawValue && this.#lex === L_NONE) {
      if (this.#bom === 1 || this.#bom === 2) throw new MirrorFault('Invalid UTF-8 byte order mark', 0)
      throw emptyBodyError()
    }
    throw new MirrorFault('Unexpected end of JSON input', end)
  }
}
