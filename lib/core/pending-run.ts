// What the array scanner keeps of the body across chunks: the run of whole elements found but
// not yet parsed (cut by the scanner at maxParseBytes and at the room left in the batch), and
// the element in progress. A run is parsed with ONE secure parse call, as the text
// '[' + elements + ']'.
//
// A run lying wholly inside the current chunk is decoded from the chunk, with no copy. What
// starts in an earlier chunk is in a CarryBuffer (a pooled slab, grown only for an element larger
// than the slab): never more than one run (< maxParseBytes) and one partial element
// (<= maxItemSize). Offsets are the body's.

import type { BufferPool } from './buffer-pool.js'
import { CarryBuffer } from './carry-buffer.js'
import type { SecureParseOptions } from './engine-options.js'
import { runFault } from './fault.js'
import { nestedDeeperThan } from './depth.js'
import { secureParse } from './secure-parse.js'
import { utf8Text } from './utf8.js'

export class PendingRun {
  /** Elements in the run. */
  count = 0
  /** Body offsets where the run starts and ends. */
  start = 0
  end = 0
  /** Index of the run's first element in the streamed array. */
  #firstItem = 0
  readonly #policy: SecureParseOptions
  readonly #carry: CarryBuffer
  /** Body offset of the first byte in the carry-over. */
  #carryStart = 0

  constructor (pool: BufferPool | null, limit: number, policy: SecureParseOptions) {
    this.#carry = new CarryBuffer(pool, limit)
    this.#policy = policy
  }

  /** The element `item` of the streamed array, at body bytes [start, end), joins the run. */
  add (start: number, end: number, item: number): void {
    if (this.count === 0) {
      this.start = start
      this.#firstItem = item
    }
    this.count++
    this.end = end
  }

  /** Parses the run (buf is the current chunk, its first byte at body offset `base`); it is empty after. */
  parse (buf: Buffer, base: number): unknown[] {
    const start = this.start
    const end = this.end
    const count = this.count
    this.count = 0
    const text = this.text(buf, base, start, end)
    let items: unknown
    try {
      items = secureParse('[' + text + ']', this.#policy)
    } catch (err) {
      throw runFault(err, this.view(buf, base, start, end), start, this.#firstItem, count, this.#policy)
    }
    const values = items as unknown[]
    if (values.length !== count) {
      throw new Error(`nexure bug: found ${count} elements at byte offset ${start} but the parse gave ${values.length}`)
    }
    return values
  }

  /**
   * The run, then the bytes [from, end) guessed to be whole elements (the array scanner's
   * `#parseGuessed`), parsed with one call: the values, and the run is empty after; or null when
   * they do not parse or nest more than `levels` levels (the array around them counts), and the
   * run is kept as it was.
   */
  parseGuess (buf: Buffer, base: number, from: number, end: number, levels: number): unknown[] | null {
    let values: unknown[]
    try {
      values = secureParse('[' + this.text(buf, base, this.count > 0 ? this.start : from, end) + ']', this.#policy) as unknown[]
    } catch {
      return null
    }
    if (nestedDeeperThan(values, levels)) return null
    this.count = 0
    return values
  }

  // The text of body bytes [start, end): in the chunk, or starting in the carry-over (which then
  // takes the chunk's bytes up to `end`, so a multi-byte character split across chunks is whole).
  text (buf: Buffer, base: number, start: number, end: number): string {
    if (start >= base) return utf8Text(buf, start - base, end - base)
    const carry = this.#carry
    const carryEnd = this.#carryStart + carry.length
    if (end > carryEnd) carry.append(buf, carryEnd - base, end - base)
    return utf8Text(carry.bytes!, start - this.#carryStart, end - this.#carryStart)
  }

  /** The bytes [start, end) as a view, for locating a fault (after `text` for the same range). */
  view (buf: Buffer, base: number, start: number, end: number): Buffer {
    if (start >= base) return buf.subarray(start - base, end - base)
    return this.#carry.bytes!.subarray(start - this.#carryStart, end - this.#carryStart)
  }

  /**
   * At the end of chunk buf: keeps what a later parse call needs (the run, or else the value
   * in progress from `valueStart`, -1 for none) and drops the rest.
   */
  keepTail (buf: Buffer, base: number, valueStart: number): void {
    const end = base + buf.length
    const carry = this.#carry
    const pending = this.count > 0 ? this.start : valueStart
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

  release (): void {
    this.count = 0
    this.#carry.release()
  }
}
