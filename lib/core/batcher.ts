// Cuts the items an engine finds into the batches its `onItems` gets, in order, at most `size`
// items each, and handed out once they hold `maxBytes` bytes of the body: the one owner of
// batching. The three engines hand it what they parse, and `request.batches()` passes their
// batches on as they come, without cutting them again.
//
// A batch goes out as soon as it is full, by count or by bytes (the engine tells each item's or
// run's bytes, so a batch passes `maxBytes` by at most its last item or run), and short of both
// only where the engine says so (`flush`: the streamed array or the entries object ended, or the
// body did). The byte bound keeps what a batch being filled holds in step with the body, not
// with the item count: 1000 items of 10 KiB would otherwise be 10 MB of objects per stream.
// A run of items the engine parsed into a fresh array (one JSON.parse call over several array
// elements) that is exactly one batch, or already over the byte bound, is handed on as it is,
// not copied item by item.
//
// What it holds between calls: the items of one batch not yet full and their bytes, nothing else.

/** Thrown through an engine when its onItems destroyed it, to stop it at once; the engine catches it quietly. */
export const DESTROYED = Symbol('destroyed by onItems')

export class Batcher {
  readonly size: number
  readonly maxBytes: number
  readonly #onBatch: (items: unknown[]) => void
  readonly #destroyed: () => boolean
  #batch: unknown[] = []
  #bytes = 0
  #emitted = 0

  /**
   * `onBatch` is the engine's onItems; `destroyed` says whether it destroyed the engine, which
   * then stops with DESTROYED. A batch handed to a throwing onBatch counts as out.
   */
  constructor (size: number, maxBytes: number, onBatch: (items: unknown[]) => void, destroyed: () => boolean) {
    this.size = size
    this.maxBytes = maxBytes
    this.#onBatch = onBatch
    this.#destroyed = destroyed
  }

  /** Items handed out so far. */
  get emitted (): number {
    return this.#emitted
  }

  /** Items in the batch being filled. */
  get pending (): number {
    return this.#batch.length
  }

  /** Room left in the batch being filled, in items. */
  get room (): number {
    return this.size - this.#batch.length
  }

  /** Room left in the batch being filled, in bytes of the body (more than 0). */
  get byteRoom (): number {
    return this.maxBytes - this.#bytes
  }

  /** An item that took `bytes` bytes of the body. */
  push (item: unknown, bytes: number): void {
    const batch = this.#batch
    batch.push(item)
    this.#bytes += bytes
    if (batch.length >= this.size || this.#bytes >= this.maxBytes) this.flush()
  }

  /**
   * Items parsed into `run`, an array of at most `room` items that nothing else keeps, from
   * `bytes` bytes of the body.
   */
  pushRun (run: unknown[], bytes: number): void {
    const batch = this.#batch
    if (batch.length === 0 && (run.length === this.size || bytes >= this.maxBytes)) {
      this.#hand(run)
      return
    }
    for (let k = 0; k < run.length; k++) batch.push(run[k])
    this.#bytes += bytes
    if (batch.length >= this.size || this.#bytes >= this.maxBytes) this.flush()
  }

  /** Hands out the batch being filled, if it holds anything. */
  flush (): void {
    const batch = this.#batch
    if (batch.length === 0) return
    this.#batch = []
    this.#bytes = 0
    this.#hand(batch)
  }

  /** Forgets the batch being filled (the engine was destroyed). */
  clear (): void {
    this.#batch = []
    this.#bytes = 0
  }

  #hand (batch: unknown[]): void {
    this.#emitted += batch.length
    this.#onBatch(batch)
    if (this.#destroyed()) throw DESTROYED
  }
}
