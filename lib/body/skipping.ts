import { SKIPPED_ITEMS_KEPT, type SkippedItem } from '../options.js'

type CodedError = Error & { code?: string }

/**
 * The records and items one body left out under `onInvalidItem: 'skip'`. Past `maxSkipped` the
 * next one is thrown instead, so a body of nothing but garbage still ends as a 400 (and a
 * client cannot make the server parse a gigabyte of it for nothing).
 */
export class SkipLog {
  count = 0
  readonly items: SkippedItem[] = []
  readonly #maxSkipped: number

  constructor (maxSkipped: number) {
    this.#maxSkipped = maxSkipped
  }

  /** Records `error` as skipped, or throws it when the body may skip no more. */
  add (error: CodedError, index: number, line: number | null, offset: number | null): void {
    if (this.count >= this.#maxSkipped) {
      error.message += ` (${this.count} invalid items were skipped already; maxSkipped is ${this.#maxSkipped})`
      throw error
    }
    this.count++
    if (this.items.length < SKIPPED_ITEMS_KEPT) {
      this.items.push({ index, line, offset, code: error.code ?? 'FST_NEXURE_INVALID_JSON', message: error.message })
    }
  }
}
