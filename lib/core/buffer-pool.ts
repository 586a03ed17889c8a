// A bounded pool of fixed-size slabs.
//
// The pool pays off where code would otherwise allocate per chunk: the carry-over of a partial
// JSON element across chunk boundaries, coalescing small chunks, upload write buffers. It is not
// a place to copy every chunk through (that costs a copy and saves nothing).
//
// Invariants, because a pool that hands the same memory to two users leaks one request's bytes
// into another's:
// - every slab handed out is tracked until it is released; a release of a slab the pool did not
//   hand out, of one already released, or of a buffer of the wrong size is refused and counted;
// - a released slab is zero-filled before it can be handed out again;
// - at most `maxPooled` free slabs are kept; the rest are dropped for the GC to take.

import { nonNegativeInteger, positiveInteger, scopeOf } from '../option-check.js'

/** Where a wrong pool option is named: `slabSize of new BufferPool()`. */
const POOL_OPTIONS = scopeOf('', ' of new BufferPool()')

export interface BufferPoolOptions {
  /**
   * Size in bytes of every slab.
   * @default 65536
   */
  slabSize?: number
  /**
   * How many free slabs the pool keeps. `0` turns pooling off: every acquire allocates
   * (useful to measure what the pool saves).
   * @default 10
   */
  maxPooled?: number
}

export interface BufferPoolStats {
  /** Acquires served from a pooled slab. */
  hits: number
  /** Acquires that had to allocate a new slab. */
  misses: number
  /** Slabs handed out and not yet released. */
  inUse: number
  /** Free slabs held by the pool now. */
  pooled: number
  /** Released slabs not kept because the pool was full. */
  dropped: number
  /** Releases refused: wrong size, not from this pool, or released twice. */
  refused: number
}

export class BufferPool {
  readonly slabSize: number
  readonly maxPooled: number
  readonly #free: Buffer[] = []
  readonly #lent = new Set<Buffer>()
  #hits = 0
  #misses = 0
  #dropped = 0
  #refused = 0

  constructor (options: BufferPoolOptions = {}) {
    this.slabSize = positiveInteger(POOL_OPTIONS, 'slabSize', options.slabSize, 64 * 1024)
    this.maxPooled = nonNegativeInteger(POOL_OPTIONS, 'maxPooled', options.maxPooled, 10)
  }

  /** Hands out a slab of `slabSize` bytes. Its content is zeros (fresh or zero-filled on release). */
  acquire (): Buffer {
    let slab = this.#free.pop()
    if (slab === undefined) {
      this.#misses++
      // allocUnsafeSlow: a slab of its own, never a slice of Node's shared 8 KiB pool, so two
      // slabs can never overlap. Zero-filled so a fresh slab reads like a recycled one.
      slab = Buffer.allocUnsafeSlow(this.slabSize).fill(0)
    } else {
      this.#hits++
    }
    this.#lent.add(slab)
    return slab
  }

  /**
   * Gives a slab back. Returns true when it was accepted; false when it was refused (not handed
   * out by this pool, already released, or of the wrong size), in which case it is counted and
   * never pooled.
   */
  release (slab: Buffer): boolean {
    if (slab.length !== this.slabSize || !this.#lent.delete(slab)) {
      this.#refused++
      return false
    }
    if (this.#free.length < this.maxPooled) {
      slab.fill(0)
      this.#free.push(slab)
    } else {
      this.#dropped++
    }
    return true
  }

  get stats (): BufferPoolStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      inUse: this.#lent.size,
      pooled: this.#free.length,
      dropped: this.#dropped,
      refused: this.#refused
    }
  }
}
