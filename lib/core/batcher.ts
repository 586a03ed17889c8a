// Cuts the items an engine finds into the batches its `onItems` gets, in order, at most `size`
// items each: the one owner of batching. The three engines hand it what they parse, and
// `request.batches()` passes their batches on as they come, without cutting them again.
//
// A batch goes out as soon as it is full, and short only where the engine says so (`flush`: the
// streamed array or the entries object ended, or the body did). A run of items the engine parsed
// into a fresh array (one JSON.parse call over several array elements) that is exactly one
// batch is handed on as it is, not copied item by item.
//
// What it holds between calls: the items of one batch not yet full, nothing else.

/** Thrown through an engine when its onItems destroyed it, to stop it at once; the engine catches it quietly. */
export const DESTROYED = Symbol('destroyed by onItems')

export class Batcher {
  readonly size: number
  readonly #onBatch: (items: unknown[]) => void
  readonly #destroyed: () => boolean
  #batch: unknown[] = []
  #emitted = 0

  /**
   * `onBatch` is the engine's onItems; `destroyed` says whether it destroyed the engine, which
   * then stops with DESTROYED. A batch handed to a throwing onBatch counts as out.
   */
  constructor (size: number, onBatch: (items: unknown[]) => void, destroyed: () => boolean) {
    this.size = size
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

  /** Room left in the batch being filled. */
  get room (): number {
    return this.size - this.#batch.length
  }

  push (item: unknown): void {
    const batch = this.#batch
    batch.push(item)
    if (batch.length >= this.size) this.flush()
  }

  /** Items parsed into `run`, an array of at most `room` items that nothing else keeps. */
  pushRun (run: unknown[]): void {
    const batch = this.#batch
    if (batch.length === 0 && run.length === this.size) {
      this.#hand(run)
      return
    }
    for (let k = 0; k < run.length; k++) batch.push(run[k])
    if (batch.length >= this.size) this.flush()
  }

  /** Hands out the batch being filled, if it holds anything. */
  flush (): void {
    const batch = this.#batch
    if (batch.length === 0) return
    this.#batch = []
    this.#hand(batch)
  }

  /** Forgets the batch being filled (the engine was destroyed). */
  clear (): void {
    this.#batch = []
  }

  #hand (batch: unknown[]): void {
    this.#emitted += batch.length
    this.#onBatch(batch)
    if (this.#destroyed()) throw DESTROYED
  }
}
