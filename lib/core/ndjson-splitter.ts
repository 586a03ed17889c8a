// Splits NDJSON (one JSON value per line) arriving in chunks, one secure parse call per line.
//
// The whole lines of a chunk are decoded with one toString call and cut on the string (a
// decode per line costs more than its parse for short lines); '\n' is ASCII, so cutting the
// bytes after a '\n' never splits a character. The partial line at the end of a chunk is carried
// in a CarryBuffer (a pooled slab, grown for a long line), which never holds more than
// `maxItemSize` bytes: a longer line is refused as soon as that many bytes have arrived.
//
// Each line is one value: a trailing '\r' is stripped, blank lines (JSON whitespace only) are
// skipped, and anything else is parsed alone, so '1,2' is an error rather than two items.
//
// The same machine splits JSON text sequences (RFC 7464, application/json-seq): records start
// with RS (0x1E) instead of ending with '\n', and a record may span lines. RS is ASCII and may
// not appear raw inside a JSON string, so cutting on it is as safe as cutting on '\n'. Text
// before the first RS is not a record: anything but whitespace there is an error. Faults name
// the 1-based record instead of the line.
//
// With `skip`, a record that is not valid JSON (or nests past maxDepth), or that `accept`
// refuses, is handed to `skip` with its location and left out; the next record is unaffected,
// since every record is parsed alone. A record too large, or one with a forbidden property,
// still fails: the first is refused before it is whole, the second is the poisoning policy.

import { NDJSON_KEYS, resolveEngineOptions } from './engine-options.js'
import { describe, invalid, oneOf, REGISTRATION } from '../option-check.js'
import type { NdjsonSplitterOptions, RecordFault, SecureParseOptions } from './engine-options.js'

export type { NdjsonSplitterOptions, RecordFault }
import { Batcher, DESTROYED } from './batcher.js'
import { CarryBuffer } from './carry-buffer.js'
import { depthFault, depthFaultInBytes, tooDeepDetail } from './depth.js'
import { byteOffsetOfChar, invalidJsonError, itemTooLargeError, parseFailure, type LocatedError } from './fault.js'
import { mayPoison, secureParse } from './secure-parse.js'
import { utf8Text } from './utf8.js'

/** The splitter's own options beside those both engines take. */
const SPLITTER_KEYS: ReadonlySet<string> = new Set([...NDJSON_KEYS, 'format', 'skip', 'accept'])
const FORMATS = ['ndjson', 'json-seq'] as const

function callbackOption<F> (name: string, value: unknown): F | null {
  if (value === undefined || value === null) return null
  if (typeof value !== 'function') throw invalid(REGISTRATION, name, `expected a function or null, got ${describe(value)}`)
  return value as F
}


const NEWLINE = 0x0a
const RETURN = 0x0d
const RECORD_SEPARATOR = 0x1e

/** Thrown inside a parse attempt at content before the first RS of a JSON text sequence. */
const BEFORE_FIRST_RS = 'A JSON text sequence must start each record with RS (0x1E)'

export class NdjsonSplitter {
  readonly #batcher: Batcher
  readonly #maxItemSize: number
  readonly #maxDepth: number
  readonly #policy: SecureParseOptions
  readonly #carry: CarryBuffer
  /** The byte that ends (NDJSON) or starts (JSON text sequence) a record, and as a string. */
  readonly #separator: number
  readonly #separatorChar: string
  readonly #sequence: boolean
  readonly #skip: ((error: LocatedError, fault: RecordFault) => void) | null
  readonly #accept: ((value: unknown, index: number) => Error | null) | null
  /** Non-blank records seen, kept or left out. */
  #records = 0
  #bytes = 0
  /** 1-based number of the line (or record) being read; 0 before the first RS of a sequence. */
  #line = 1
  /** Body offset where the current line starts. */
  #lineStart = 0
  #closed = false

  constructor (options: NdjsonSplitterOptions, onItems: (items: unknown[]) => void) {
    if (typeof onItems !== 'function') throw new TypeError('NdjsonSplitter needs an onItems callback')
    const checked = resolveEngineOptions(options, SPLITTER_KEYS)
    this.#batcher = new Batcher(checked.batchSize, checked.batchBytes, onItems, () => this.#closed)
    this.#maxItemSize = checked.maxItemSize
    this.#policy = checked.policy
    this.#maxDepth = checked.maxDepth
    this.#carry = new CarryBuffer(checked.pool, this.#maxItemSize)
    this.#sequence = oneOf(REGISTRATION, 'format', options.format, FORMATS, 'ndjson') === 'json-seq'
    this.#separator = this.#sequence ? RECORD_SEPARATOR : NEWLINE
    this.#separatorChar = String.fromCharCode(this.#separator)
    if (this.#sequence) this.#line = 0
    this.#skip = callbackOption('skip', options.skip)
    this.#accept = this.#skip === null ? null : callbackOption('accept', options.accept)
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
    if (this.#closed) throw new Error('NdjsonSplitter: write() after end(), destroy() or an error')
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    try {
      this.#split(buf)
    } catch (err) {
      this.destroy()
      if (err !== DESTROYED) throw err
    }
  }

  end (): void {
    if (this.#closed) throw new Error('NdjsonSplitter: end() after end(), destroy() or an error')
    try {
      const carry = this.#carry
      if (carry.length > 0) this.#parseLine(carry.bytes!, 0, carry.length)
      this.#batcher.flush()
    } catch (err) {
      if (err !== DESTROYED) throw err
    } finally {
      this.destroy()
    }
  }

  destroy (): void {
    this.#closed = true
    this.#batcher.clear()
    this.#carry.release()
  }

  #split (buf: Buffer): void {
    const n = buf.length
    const base = this.#bytes
    const carry = this.#carry
    let i = 0
    if (carry.length > 0) {
      const newline = buf.indexOf(this.#separator)
      const end = newline === -1 ? n : newline
      if (carry.length + end > this.#maxItemSize) throw this.#tooLarge()
      carry.append(buf, 0, end)
      if (newline === -1) {
        this.#bytes = base + n
        return
      }
      this.#parseLine(carry.bytes!, 0, carry.length)
      carry.clear()
      i = newline + 1
      this.#line++
      this.#lineStart = base + i
    }
    const last = buf.lastIndexOf(this.#separator)
    if (last >= i) {
      if (last - i >= this.#maxItemSize) {
        // Some line in here may be too long: go line by line on the bytes.
        for (let newline = buf.indexOf(this.#separator, i); newline !== -1 && newline <= last; newline = buf.indexOf(this.#separator, i)) {
          if (newline - i > this.#maxItemSize) throw this.#tooLarge()
          this.#parseLine(buf, i, newline)
          i = newline + 1
          this.#line++
          this.#lineStart = base + i
        }
      } else {
        this.#parseLines(buf, i, last + 1)
        i = last + 1
        this.#lineStart = base + i
      }
    }
    if (n - i > this.#maxItemSize) throw this.#tooLarge()
    if (i < n) carry.append(buf, i, n)
    this.#bytes = base + n
  }

  // Whole lines bytes[start, end) (end just after a '\n'): decoded once, then cut into lines on
  // the string, which costs less than one decode per line. Byte offsets are worked out only for
  // an error.
  #parseLines (bytes: Buffer, start: number, end: number): void {
    const text = utf8Text(bytes, start, end)
    const plain = !mayPoison(text, this.#policy)
    const length = text.length
    const separator = this.#separatorChar
    let from = 0
    while (from < length) {
      const newline = text.indexOf(separator, from)
      let to = newline
      if (to > from && text.charCodeAt(to - 1) === RETURN) to--
      let first = from
      while (first < to) {
        const c = text.charCodeAt(first)
        if (c !== 0x20 && c !== 0x09 && c !== RETURN && c !== NEWLINE) break
        first++
      }
      if (first < to) {
        let value: unknown
        try {
          if (this.#line === 0) throw new SyntaxError(BEFORE_FIRST_RS)
          if (depthFault(text, first, to, this.#maxDepth) !== -1) throw new RangeError('too deep')
          // secure-json-parse also strips a line's leading BOM, which JSON.parse refuses.
          value = plain && text.charCodeAt(from) !== 0xfeff ? JSON.parse(text.slice(from, to)) : secureParse(text.slice(from, to), this.#policy)
        } catch {
          // Again on the line's bytes, which locates the fault (the '\n' stays out, a '\r' in).
          const lineStart = start + byteOffsetOfChar(bytes, start, end, from)
          const lineEnd = lineStart + byteOffsetOfChar(bytes, lineStart, end, newline - from)
          const offsetBefore = this.#lineStart
          this.#lineStart += lineStart - start
          this.#parseLine(bytes, lineStart, lineEnd)
          // Only a record left out by `skip` gets here; the rest of the run goes on as before.
          this.#lineStart = offsetBefore
          from = newline + 1
          this.#line++
          continue
        }
        // Sized in characters, which is the bytes for ASCII and close enough for a batch's bound.
        if (this.#accept !== null) {
          this.#keep(value, to - from, bytes, start, end, from)
        } else {
          // The usual case, inline: this loop is the NDJSON hot path.
          this.#records++
          this.#batcher.push(value, to - from)
        }
      }
      from = newline + 1
      this.#line++
    }
  }

  #parseLine (bytes: Buffer, start: number, end: number): void {
    if (end > start && bytes[end - 1] === RETURN) end--
    let first = start
    while (first < end) {
      const c = bytes[first]!
      if (c !== 0x20 && c !== 0x09 && c !== RETURN && c !== NEWLINE) break
      first++
    }
    if (first === end) return
    if (this.#line === 0) {
      this.#fault(invalidJsonError(BEFORE_FIRST_RS, this.#where(this.#lineStart + first - start)))
      return
    }
    const deep = depthFaultInBytes(bytes, start, end, this.#maxDepth)
    if (deep !== -1) {
      this.#fault(invalidJsonError(tooDeepDetail(this.#maxDepth), this.#where(this.#lineStart + deep - start)))
      return
    }
    let value: unknown
    try {
      value = secureParse(bytes.toString('utf8', start, end), this.#policy)
    } catch (err) {
      // secure-json-parse strips a leading BOM, so V8's positions then start one character later.
      const bom = end - start >= 3 && bytes[start] === 0xef && bytes[start + 1] === 0xbb && bytes[start + 2] === 0xbf
      const failure = parseFailure(err, bytes, start, end, this.#lineStart, bom ? -1 : 0, this.#unit())
      if (failure.code === 'FST_NEXURE_FORBIDDEN_PROPERTY') throw failure
      this.#fault(failure)
      return
    }
    this.#keep(value, end - start, null, 0, 0, 0)
  }

  /**
   * A parsed record of `size` bytes: checked by `accept` when skipping, then batched.
   * `bytes[start, end)` and `charIndex` locate it when it came from a decoded run (null: it
   * starts at #lineStart).
   */
  #keep (value: unknown, size: number, bytes: Buffer | null, start: number, end: number, charIndex: number): void {
    const index = this.#records++
    if (this.#accept !== null) {
      const refused = this.#accept(value, index)
      if (refused !== null) {
        const offset = bytes === null ? this.#lineStart : this.#lineStart + byteOffsetOfChar(bytes, start, end, charIndex)
        this.#skip!(Object.assign(refused, this.#where(offset)) as LocatedError, { index, line: this.#line, offset })
        return
      }
    }
    this.#batcher.push(value, size)
  }

  /** A record that is not valid JSON: thrown, or handed to `skip` and left out. */
  #fault (error: LocatedError): void {
    if (this.#skip === null) throw error
    this.#skip(error, { index: this.#records++, line: this.#line, offset: error.offset })
  }

  #unit (): { line?: number, record?: number } {
    return this.#sequence ? { record: this.#line } : { line: this.#line }
  }

  #where (offset: number) {
    return { offset, ...this.#unit() }
  }

  #tooLarge () {
    return itemTooLargeError(this.#sequence ? 'a record starting' : 'a line starting', this.#maxItemSize, this.#where(this.#lineStart))
  }
}
