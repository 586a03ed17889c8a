// Builds one value from stream-json's packed tokens, for the FilterEngine: the selected value,
// token by token, as JSON.parse would build it (a `__proto__` key defined as an own property,
// not assigned, which would set the prototype). The engine checks it afterwards as
// secure-json-parse would; `suspect` says whether there is anything to check.
//
// What is kept across chunks: one open array or object per level of the value (bounded by
// maxDepth) and the current key of each open object.

import type { Token } from 'stream-json/core/parser.js'

/** What `add` returns while the value is not complete. */
export const BUILDING = Symbol('value not complete')

type Container = unknown[] | Record<string, unknown>

export class ValueBuilder {
  readonly #stack: Container[] = []
  readonly #keys: string[] = []
  /** The value has a `__proto__` or `constructor` key somewhere. */
  suspect = false

  /** A value is being built. */
  get open (): boolean {
    return this.#stack.length > 0
  }

  /** Starts a value with its opening bracket. */
  start (isArray: boolean): void {
    this.suspect = false
    this.#stack.push(isArray ? [] : {})
    this.#keys.push('')
  }

  /** The next token of the open value: the value once its last bracket closes, else BUILDING. */
  add (token: Token): unknown {
    const stack = this.#stack
    const name = token.name
    let value: unknown
    switch (name) {
      case 'startObject':
      case 'startArray':
        stack.push(name === 'startArray' ? [] : {})
        this.#keys.push('')
        return BUILDING
      case 'keyValue':
        this.#keys[stack.length - 1] = token.value
        if (token.value === '__proto__' || token.value === 'constructor') this.suspect = true
        return BUILDING
      case 'endObject':
      case 'endArray':
        value = stack.pop()
        this.#keys.pop()
        if (stack.length === 0) return value
        break
      default:
        value = scalar(token)
    }
    const top = stack[stack.length - 1]!
    if (Array.isArray(top)) {
      top.push(value)
      return BUILDING
    }
    const key = this.#keys[stack.length - 1]!
    // JSON.parse makes `__proto__` an own property; an assignment would set the prototype.
    if (key === '__proto__') Object.defineProperty(top, key, { value, writable: true, enumerable: true, configurable: true })
    else top[key] = value
    return BUILDING
  }

  clear (): void {
    this.#stack.length = 0
    this.#keys.length = 0
  }
}

/** The value of a scalar token. */
export function scalar (token: Token): unknown {
  switch (token.name) {
    case 'stringValue': return token.value
    case 'numberValue': return Number(token.value)
    case 'trueValue': return true
    case 'falseValue': return false
    case 'nullValue': return null
    default: throw new Error(`nexure bug: unexpected token ${token.name} for a value`)
  }
}
