// stream-json's tokenizer behind one small interface, for the FilterEngine: body bytes in, packed
// tokens out (one token per key, string, number, literal or bracket, which is what lets the byte
// mirror's k-th lexeme give the k-th token its offsets). It is the only module that touches
// stream-json's API.
//
// It only ever sees bytes the mirror accepted, so it should not fail; if it does, the fault is
// still reported as the body's. The mirror accepts U+FEFF before the value only as the body's
// byte order mark at offset 0, so a U+FEFF that starts the first text is that BOM, and dropped
// (stream-json would refuse it).
//
// What is kept across chunks: the decoder's partial UTF-8 sequence (at most 3 bytes) and
// stream-json's unconsumed tail (at most one lexeme, which the engine bounds by maxItemSize).

import { StringDecoder } from 'node:string_decoder'
import { jsonParser } from 'stream-json/core/parser.js'
import type { Token } from 'stream-json/core/parser.js'
import { none } from 'stream-chain/defs.js'
import { invalidJsonError } from './fault.js'

export type { Token }

const NO_TOKENS: readonly Token[] = Object.freeze([])

export class Tokenizer {
  readonly #tokenize = jsonParser({ packValues: true, streamValues: false })
  readonly #decoder = new StringDecoder('utf8')
  #started = false

  /** The tokens that `bytes` complete; `at` is the body offset after them, for a fault. */
  write (bytes: Buffer, at: number): readonly Token[] {
    return this.#text(this.#decoder.write(bytes), at)
  }

  /** The body's bytes ended at offset `at`: the tokens a partial character at the end gives. */
  endText (at: number): readonly Token[] {
    return this.#text(this.#decoder.end(), at)
  }

  /** Then the tokens stream-json still holds back (a number waits for what follows it). */
  finish (at: number): readonly Token[] {
    return this.#tokens(none, at)
  }

  #text (text: string, at: number): readonly Token[] {
    if (text.length === 0) return NO_TOKENS
    if (!this.#started) {
      this.#started = true
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
      if (text.length === 0) return NO_TOKENS
    }
    return this.#tokens(text, at)
  }

  #tokens (text: string | typeof none, at: number): readonly Token[] {
    let out: unknown
    try {
      out = this.#tokenize(text as string)
    } catch (err) {
      throw invalidJsonError(`stream-json refused the text (${(err as Error).message})`, { offset: at })
    }
    if (out === none || out === undefined) return NO_TOKENS
    return (out as { values: Token[] }).values
  }
}
