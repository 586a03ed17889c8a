// The reference of `batches({ filter })`: secure-json-parse on the whole body (as Fastify parses
// JSON), then a walk of the parsed value in document order that takes every outermost value whose
// path the filter accepts. JavaScript orders integer-like keys first and JSON.parse keeps the
// last of duplicate keys, so the generator here writes neither: its keys are unique in their
// object and start with a letter (poisoning keys included now and then).

import sjson from 'secure-json-parse'
import type { PathFilter } from '../../lib/core/engine-options.js'
import { JsonGen } from './json-gen.js'
import type { Outcome, Policy } from './reference.js'

const WHITESPACE_ONLY = /^\ufeff?[ \t\n\r]*$/
const FORBIDDEN = 'Object contains forbidden prototype property'

export function referenceFilter (body: Buffer, filter: PathFilter, policy: Policy = {}): Outcome {
  const text = body.toString('utf8')
  if (WHITESPACE_ONLY.test(text)) return { code: 'FST_NEXURE_EMPTY_BODY' }
  let value: unknown
  try {
    value = sjson.parse(text, null, policy)
  } catch (err) {
    return { code: (err as Error).message === FORBIDDEN ? 'FST_NEXURE_FORBIDDEN_PROPERTY' : 'FST_NEXURE_INVALID_JSON' }
  }
  return { items: selectIn(value, filter) }
}

/** The outermost values of `value` whose path `filter` accepts, in document order. */
export function selectIn (value: unknown, filter: PathFilter): unknown[] {
  const items: unknown[] = []
  const path: Array<string | number> = []
  const test = (): boolean => filter instanceof RegExp ? new RegExp(filter.source, filter.flags.replace(/[gy]/g, '')).test(path.join('.')) : filter(path)
  const walk = (node: unknown): void => {
    if (test()) {
      items.push(node)
      return
    }
    if (node === null || typeof node !== 'object') return
    const entries: Array<[string | number, unknown]> = Array.isArray(node)
      ? node.map((v, i) => [i, v])
      : Object.keys(node).map(key => [key, (node as Record<string, unknown>)[key]])
    for (const [segment, child] of entries) {
      path.push(segment)
      walk(child)
      path.pop()
    }
  }
  walk(value)
  return items
}

const SPECIAL_KEYS = ['"__proto__"', '"constructor"', '"prototype"', '"\\u005f_proto__"', '"construct\\u006fr"']

/** JsonGen whose object keys are unique in their object, never integer-like, sometimes poisoning ones. */
export class FilterGen extends JsonGen {
  readonly #special: number

  constructor (seed: number, options: { maxDepth?: number, maxWidth?: number, special?: number } = {}) {
    super(seed, options)
    this.#special = options.special ?? 0
  }

  override object (depth = 1, keys = this.int(6)): string {
    const parts: string[] = []
    const used = new Set<string>()
    for (let k = 0; k < keys; k++) {
      let key = '"k' + k + '_' + this.string().slice(1)
      if (this.random() < this.#special) {
        const special = this.pick(SPECIAL_KEYS)
        const decoded = JSON.parse(special) as string
        if (!used.has(decoded)) key = special
      }
      used.add(JSON.parse(key) as string)
      parts.push(this.ws() + key + this.ws() + ':' + this.ws() + this.value(depth) + this.ws())
    }
    return '{' + (parts.length === 0 ? this.ws() : parts.join(',')) + '}'
  }
}
