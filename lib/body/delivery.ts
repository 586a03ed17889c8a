// What `request.batches()` does with every batch before the handler gets it, in one place for
// bodies streamed, read whole, or selected by a filter: each item checked against the route's
// itemSchema (a 400 at the first failing one; under `onInvalidItem: 'skip'` the failing ones
// left out and logged), the batch counted, and yielded unless nothing is left of it.
//
// The batches come from the engines as they cut them (core/batcher.ts); nothing here cuts or
// joins them. While a batch is out with the handler, what this holds is that batch and the ones
// the engine already handed over behind it, nothing else.

import type { FastifyRequest } from 'fastify'
import { FST_NEXURE_INVALID_ITEM } from '../errors.js'
import type { BodyState } from './state.js'
import type { SkipLog } from './skipping.js'

type Validate = ((item: unknown) => boolean) & { errors?: Array<{ instancePath?: string, message?: string }> | null }

export function itemValidator (request: FastifyRequest, state: BodyState): Validate | null {
  const schema = state.route.itemSchema
  return schema === null ? null : request.compileValidationSchema(schema) as Validate
}

function invalidItem (validate: Validate, index: number): Error {
  const detail = (validate.errors ?? []).map(e => `${e.instancePath === '' || e.instancePath === undefined ? 'item' : e.instancePath} ${e.message ?? 'is invalid'}`).join('; ')
  return new FST_NEXURE_INVALID_ITEM(index, detail === '' ? 'does not match itemSchema' : detail)
}

/** The record splitter's `accept`: the item's schema error, or null. */
export function acceptWith (validate: Validate | null): ((value: unknown, index: number) => Error | null) | null {
  if (validate === null) return null
  return (value, index) => validate(value) ? null : invalidItem(validate, index)
}

export class Delivery {
  /** Items and batches yielded so far. */
  items = 0
  batches = 0
  readonly #validate: Validate | null
  readonly #log: SkipLog | null
  /** Items seen (yielded or skipped), for the index of the next one. */
  #seen = 0

  /**
   * `log` is the skip log under `onInvalidItem: 'skip'` (null: a failing item throws);
   * `checkedAlready` says the records splitter applied itemSchema itself (`accept`), so that a
   * refused record is located by line and offset.
   */
  constructor (validate: Validate | null, log: SkipLog | null, checkedAlready: boolean) {
    this.#validate = checkedAlready ? null : validate
    this.#log = log
  }

  /** Yields the batches of `ready`, taking each out as it goes. */
  * drain (ready: unknown[][]): Generator<unknown[], void, undefined> {
    while (ready.length > 0) {
      const batch = this.#checked(ready.shift()!)
      if (batch.length === 0) continue
      this.items += batch.length
      this.batches++
      yield batch
    }
  }

  #checked (batch: unknown[]): unknown[] {
    const first = this.#seen
    this.#seen += batch.length
    const validate = this.#validate
    if (validate === null) return batch
    const log = this.#log
    if (log === null) {
      for (let i = 0; i < batch.length; i++) {
        if (!validate(batch[i])) throw invalidItem(validate, first + i)
      }
      return batch
    }
    let kept: unknown[] | null = null
    for (let i = 0; i < batch.length; i++) {
      if (validate(batch[i])) {
        if (kept !== null) kept.push(batch[i])
      } else {
        log.add(invalidItem(validate, first + i), first + i, null, null)
        if (kept === null) kept = batch.slice(0, i)
      }
    }
    return kept ?? batch
  }
}
