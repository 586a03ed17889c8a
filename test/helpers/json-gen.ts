// A seeded generator of JSON texts meant to trip a boundary scanner: strings full of quotes,
// backslashes, brackets, commas and multi-byte characters, escapes of every kind, numbers with
// signs and exponents, deep nesting, and whitespace wherever JSON allows it. It writes the text
// itself (not JSON.stringify) so spacing and escape spellings vary.

import { prng } from './chunking.js'

export interface JsonGenOptions {
  /** Allow '\n' in whitespace (false for NDJSON lines). @default true */
  newlines?: boolean
  /** Most nesting levels. @default 4 */
  maxDepth?: number
  /** Most elements/keys per container. @default 5 */
  maxWidth?: number
}

const PLAIN = 'abcXYZ019 _-+.:;/?~'
const TRICKY = ['[', ']', '{', '}', ',', ':', '\\"', '\\\\', '\\\\\\"', '\\/', '\\n', '\\t', '\\r', '\\b', '\\f',
  '\\u0041', '\\u00e9', '\\u20AC', '\\ud83d\\ude00', '\\ud800', '\\u0000', '\\u005c', '\\u0022']
const UNICODE = ['é', 'ß', '€', '中', '文', '😀', '𝄞', '\u2028', '\u00a0', 'Ω', '\ufeff']

export class JsonGen {
  readonly random: () => number
  readonly #newlines: boolean
  readonly #maxDepth: number
  readonly #maxWidth: number

  constructor (seed: number, options: JsonGenOptions = {}) {
    this.random = prng(seed)
    this.#newlines = options.newlines ?? true
    this.#maxDepth = options.maxDepth ?? 4
    this.#maxWidth = options.maxWidth ?? 5
  }

  int (below: number): number {
    return Math.floor(this.random() * below)
  }

  pick<T> (values: readonly T[]): T {
    return values[this.int(values.length)]!
  }

  /** JSON whitespace, often none. */
  ws (): string {
    const r = this.random()
    if (r < 0.55) return ''
    if (r < 0.75) return ' '
    const pieces = this.#newlines ? [' ', '\t', '\n', '\r\n', '\r', '  '] : [' ', '\t', '\r', '  ']
    let text = ''
    for (let k = 1 + this.int(3); k > 0; k--) text += this.pick(pieces)
    return text
  }

  string (): string {
    let text = '"'
    for (let k = this.int(12); k > 0; k--) {
      const r = this.random()
      if (r < 0.45) text += this.pick([...PLAIN])
      else if (r < 0.8) text += this.pick(TRICKY)
      else text += this.pick(UNICODE)
    }
    return text + '"'
  }

  number (): string {
    const sign = this.random() < 0.3 ? '-' : ''
    const int = this.random() < 0.2 ? '0' : String(1 + this.int(1e6))
    const fraction = this.random() < 0.3 ? '.' + String(this.int(1e4)) : ''
    const exponent = this.random() < 0.2 ? this.pick(['e', 'E']) + this.pick(['', '+', '-']) + String(this.int(30)) : ''
    return sign + int + fraction + exponent
  }

  scalar (): string {
    const r = this.random()
    if (r < 0.4) return this.string()
    if (r < 0.8) return this.number()
    return this.pick(['true', 'false', 'null'])
  }

  value (depth = 0): string {
    const r = this.random()
    if (depth >= this.#maxDepth || r < 0.45) return this.scalar()
    if (r < 0.7) return this.array(depth + 1)
    return this.object(depth + 1)
  }

  array (depth = 1, length = this.int(this.#maxWidth + 1)): string {
    const parts: string[] = []
    for (let k = 0; k < length; k++) parts.push(this.ws() + this.value(depth) + this.ws())
    return '[' + (parts.length === 0 ? this.ws() : parts.join(',')) + ']'
  }

  object (depth = 1, keys = this.int(this.#maxWidth + 1)): string {
    const parts: string[] = []
    for (let k = 0; k < keys; k++) parts.push(this.ws() + this.string() + this.ws() + ':' + this.ws() + this.value(depth) + this.ws())
    return '{' + (parts.length === 0 ? this.ws() : parts.join(',')) + '}'
  }

  /** A body: a top-level array of `length` values, surrounded by whitespace. */
  arrayBody (length: number): string {
    return this.ws() + this.array(1, length) + this.ws()
  }

  /** Random byte-level damage: flips, insertions and deletions. */
  mutate (buf: Buffer, edits = 1 + this.int(3)): Buffer {
    const interesting = [0x2c, 0x5b, 0x5d, 0x7b, 0x7d, 0x22, 0x3a, 0x5c, 0x20, 0x0a, 0x30, 0x2d, 0x65, 0x74, 0xff, 0xc3, 0xa9, 0xef, 0x00]
    let bytes = [...buf]
    for (let k = 0; k < edits; k++) {
      const at = this.int(bytes.length + 1)
      const r = this.random()
      const byte = this.random() < 0.8 ? this.pick(interesting) : this.int(256)
      if (r < 0.35 && at < bytes.length) bytes[at] = byte
      else if (r < 0.7) bytes.splice(at, 0, byte)
      else bytes.splice(at, 1)
    }
    if (bytes.length === 0) bytes = [0x20]
    return Buffer.from(bytes)
  }
}
