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

import { NDJSON_KEYS, resolveEngineOptions } from './engine-options.js'
import type { NdjsonSplitterOptions, SecureParseOptions } from './engine-options.js'

export type { NdjsonSplitterOptions }
import { CarryBuffer } from './carry-buffer.js'
import { depthFault, depthFaultInBytes, tooDeepDetail } from './depth.js'
import { byteOffsetOfChar, invalidJsonError, itemTooLargeError, parseFailure } from './fault.js'
import { mayPoison, secureParse } from './secure-parse.js'


/** Thrown through the splitter when onItems destroyed it: it stops at once, quietly. */
const DESTROYED = Symbol('destroyed by onItems')

const NEWLINE = 0x0a
const RETURN = 0x0d

export class NdjsonSplitter {
  readonly #onItems: (items: unknown[]) => void
  readonly #batchSize: number
  readonly #maxItemSize: number
  readonly #maxDepth: number
  readonly #policy: SecureParseOptions
  readonly #carry: CarryBuffer
  #batch: unknown[] = []
  #itemCount = 0
  #bytes = 0
  /** 1-based number of the line being read. */
  #line = 1
  /** Body offset where the current line starts. */
  #lineStart = 0
  #closed = false

  constructor (options: NdjsonSplitterOptions, onItems: (items: unknown[]) => void) {
    if (typeof onItems !== 'function') throw new TypeError('NdjsonSplitter needs an onItems callback')
    this.#onItems = onItems
    const checked = resolveEngineOptions(options, NDJSON_KEYS)
    this.#batchSize = checked.batchSize
    this.#maxItemSize = checked.maxItemSize
    this.#policy = checked.policy
    this.#maxDepth = checked.maxDepth
    this.#carry = new CarryBuffer(checked.pool, this.#maxItemSize)
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
      if (this.#batch.length > 0) this.#emit()
    } catch (err) {
      if (err !== DESTROYED) throw err
    } finally {
      this.destroy()
    }
  }

  destroy (): void {
    this.#closed = true
    this.#batch = []
    this.#carry.release()
  }

  #split (buf: Buffer): void {
    const n = buf.length
    const base = this.#bytes
    const carry = this.#carry
    let i = 0
    if (carry.length > 0) {
      const newline = buf.indexOf(NEWLINE)
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
    const last = buf.lastIndexOf(NEWLINE)
    if (last >= i) {
      if (last - i >= this.#maxItemSize) {
        // Some line in here may be too long: go line by line on the bytes.
        for (let newline = buf.indexOf(NEWLINE, i); newline !== -1 && newline <= last; newline = buf.indexOf(NEWLINE, i)) {
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
    const text = bytes.toString('utf8', start, end)
    const plain = !mayPoison(text, this.#policy)
    const length = text.length
    let from = 0
    while (from < length) {
      const newline = text.indexOf('\n', from)
      let to = newline
      if (to > from && text.charCodeAt(to - 1) === RETURN) to--
      let first = from
      while (first < to) {
        const c = text.charCodeAt(first)
        if (c !== 0x20 && c !== 0x09 && c !== RETURN) break
        first++
      }
      if (first < to) {
        let value: unknown
        try {
          if (depthFault(text, first, to, this.#maxDepth) !== -1) throw new RangeError('too deep')
          // secure-json-parse also strips a line's leading BOM, which JSON.parse refuses.
          value = plain && text.charCodeAt(from) !== 0xfeff ? JSON.parse(text.slice(from, to)) : secureParse(text.slice(from, to), this.#policy)
        } catch (err) {
          // Again on the line's bytes, which locates the fault (the '\n' stays out, a '\r' in).
          const lineStart = start + byteOffsetOfChar(bytes, start, end, from)
          const lineEnd = lineStart + byteOffsetOfChar(bytes, lineStart, end, newline - from)
          this.#lineStart += lineStart - start
          this.#parseLine(bytes, lineStart, lineEnd)
          throw err
        }
        this.#batch.push(value)
        if (this.#batch.length >= this.#batchSize) this.#emit()
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
      if (c !== 0x20 && c !== 0x09 && c !== RETURN) break
      first++
    }
    if (first === end) return
    const deep = depthFaultInBytes(bytes, start, end, this.#maxDepth)
    if (deep !== -1) {
      throw invalidJsonError(tooDeepDetail(this.#maxDepth), { offset: this.#lineStart + deep - start, line: this.#line })
    }
    let value: unknown
    try {
      value = secureParse(bytes.toString('utf8', start, end), this.#policy)
    } catch (err) {
      // secure-json-parse strips a leading BOM, so V8's positions then start one character later.
      const bom = end - start >= 3 && bytes[start] === 0xef && bytes[start + 1] === 0xbb && bytes[start + 2] === 0xbf
      throw parseFailure(err, bytes, start, end, this.#lineStart, bom ? -1 : 0, { line: this.#line })
    }
    this.#batch.push(value)
    if (this.#batch.length >= this.#batchSize) this.#emit()
  }

  #emit (): void {
    const batch = this.#batch
    this.#batch = []
    this.#itemCount += batch.length
    this.#onItems(batch)
    if (this.#closed) throw DESTROYED
  }

  #tooLarge () {
    return itemTooLargeError('a line starting', this.#maxItemSize, { offset: this.#lineStart, line: this.#line })
  }
}
