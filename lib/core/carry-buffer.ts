import type { BufferPool } from './buffer-pool.js'

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
