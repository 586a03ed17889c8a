// Selection anywhere in a JSON body, streamed: every outermost value whose path a filter
// accepts is an item (`batches({ filter })`).
//
// stream-json's tokenizer (tokenizer.ts) lexes the text and its tokens build the values. Everything that makes
// this safe is nexure's, because stream-json's tokens carry no offsets and its README says it is
// not designed for hostile input:
//
// - A byte-level mirror (byte-mirror.ts) reads every chunk before the tokenizer does: the whole
//   grammar, depth, and each lexeme's byte offsets, which each token takes. The tokenizer never
//   sees text the mirror refused (before the mirror's fault is thrown, the text up to it is
//   tokenized, so a fault found by the walk earlier in the same chunk is reported first).
// - The walk (`#token`) tracks the path, tests the filter once per value outside the
//   selection, and has the selected values built (value-builder.ts) as JSON.parse would build
//   them. secure-json-parse's policy is applied as it would be to the whole body: in a
//   selected value by secure-json-parse's own scan; around the selection key by key (a `__proto__` value removed is not walked; an object under a `constructor` key is
//   held back until it ends when constructorAction is 'remove', since a `prototype` key in it
//   removes it whole, and with it what it held).
// - A key given twice in an object around the selection is refused: JSON.parse keeps the last
//   value, where the first one stood, which a stream cannot do once items have gone out.
//
// What is kept across chunks: the mirror's state, the tokenizer's unconsumed tail (at most one
// lexeme, bounded by maxItemSize), the selected value being built (bounded by maxItemSize),
// the path (bounded by maxDepth), the keys of the objects around the selection and what a
// `constructor` object holds back (each bounded by maxItemSize).

import { FILTER_KEYS, filterOption, resolveEngineOptions, type FilterEngineOptions, type SecureParseOptions } from './engine-options.js'
import { REGISTRATION } from '../option-check.js'
import { Batcher, DESTROYED } from './batcher.js'
import { ByteMirror, MirrorFault } from './byte-mirror.js'
import { forbiddenPropertyError, invalidJsonError, itemTooLargeError, type LocatedError } from './fault.js'
import { secureScan } from './secure-parse.js'
import { Tokenizer, type Token } from './tokenizer.js'
import { BUILDING, scalar, ValueBuilder } from './value-builder.js'

export type { FilterEngineOptions }

/** What a `constructor` object around the selection holds back (constructorAction 'remove'). */
interface Hold {
  readonly start: number
  readonly items: unknown[]
  /** The bytes of each item held, for the batch's byte bound. */
  readonly sizes: number[]
  error: LocatedError | null
}

/** An array or object around the selection, being walked. */
interface Frame {
  readonly isArray: boolean
  /** Dotted path of this container ('' for the top-level value). */
  readonly path: string
  /** Segments of its path (0 for the top-level value). */
  readonly depth: number
  /** Objects: under a `constructor` key, where secure-json-parse looks for `prototype`. */
  readonly isConstructorValue: boolean
  readonly hold: Hold | null
  /** Arrays: the index of the next element. */
  index: number
  /** Objects: the current key, and the offset of its lexeme. */
  key: string
  keyOffset: number
  keys: Set<string> | null
  keyChars: number
  /** The value of the current key is not walked: a `__proto__` removed by protoAction 'remove'. */
  drop: boolean
}


export class FilterEngine {
  readonly #batcher: Batcher
  readonly #maxItemSize: number
  readonly #maxDepth: number
  readonly #policy: SecureParseOptions
  readonly #regex: RegExp | null
  readonly #test: ((path: readonly (string | number)[]) => boolean) | null
  readonly #tokenizer = new Tokenizer()
  #closed = false
  #bytes = 0

  readonly #mirror: ByteMirror

  // The walk.
  readonly #frames: Frame[] = []
  readonly #segments: Array<string | number> = []
  readonly #holds: Hold[] = []
  /** Items held back in holds, for the index of the next item. */
  #held = 0
  #keyChars = 0
  #skipDepth = 0
  #skipFrame: Frame | null = null
  #skipping = false

  // The selected value being built.
  readonly #builder = new ValueBuilder()
  #itemStart = -1
  #itemUnderConstructor = false

  constructor (options: FilterEngineOptions, onItems: (items: unknown[]) => void) {
    if (typeof onItems !== 'function') throw new TypeError('FilterEngine needs an onItems callback')
    const checked = resolveEngineOptions(options, FILTER_KEYS)
    this.#batcher = new Batcher(checked.batchSize, checked.batchBytes, onItems, () => this.#closed)
    this.#maxItemSize = checked.maxItemSize
    this.#maxDepth = checked.maxDepth
    this.#policy = checked.policy
    this.#mirror = new ByteMirror(this.#maxDepth)
    const filter = filterOption(REGISTRATION, 'filter', (options as { filter?: unknown } | undefined)?.filter)
    this.#regex = filter instanceof RegExp ? filter : null
    this.#test = filter instanceof RegExp ? null : filter
  }

  /** Bytes written so far. */
  get bytesScanned (): number {
    return this.#bytes
  }

  /** Items handed to onItems so far. */
  get itemCount (): number {
    return this.#batcher.emitted
  }

  write (chunk: Uint8Array): void {
    if (this.#closed) throw new Error('FilterEngine: write() after end(), destroy() or an error')
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    const base = this.#bytes
    try {
      let fault: MirrorFault | null = null
      try {
        this.#mirror.scan(bytes, base)
      } catch (err) {
        if (!(err instanceof MirrorFault)) throw err
        fault = err
      }
      if (fault === null) {
        this.#take(this.#tokenizer.write(bytes, base))
        this.#bytes += bytes.length
        this.#checkOpen(this.#bytes)
      } else {
        this.#take(this.#tokenizer.write(bytes.subarray(0, Math.max(0, fault.offset - base)), base))
        this.#checkOpen(fault.offset)
        throw this.#faultError(fault)
      }
    } catch (err) {
      this.destroy()
      if (err !== DESTROYED) throw err
    }
  }

  end (): void {
    if (this.#closed) throw new Error('FilterEngine: end() after end(), destroy() or an error')
    try {
      try {
        this.#mirror.finish(this.#bytes)
      } catch (err) {
        if (!(err instanceof MirrorFault)) throw err
        this.#take(this.#tokenizer.endText(this.#bytes))
        this.#checkOpen(err.offset)
        throw this.#faultError(err)
      }
      this.#take(this.#tokenizer.endText(this.#bytes))
      this.#take(this.#tokenizer.finish(this.#bytes))
      this.#batcher.flush()
    } catch (err) {
      if (err !== DESTROYED) throw err
    } finally {
      this.destroy()
    }
  }

  destroy (): void {
    this.#closed = true
    this.#batcher.clear()
    this.#builder.clear()
    this.#mirror.clear()
  }

  // ---- Tokens --------------------------------------------------------------------------------

  #take (tokens: readonly Token[]): void {
    for (let k = 0; k < tokens.length; k++) this.#token(tokens[k]!)
    this.#mirror.compact()
  }

  #token (token: Token): void {
    const mirror = this.#mirror
    mirror.take(token.name)
    const start = mirror.start
    const end = mirror.end
    if (this.#builder.open) return this.#build(token, end)
    if (this.#skipping) return this.#skip(token, start, end)
    const name = token.name
    const frame = this.#frames[this.#frames.length - 1]
    if (name === 'endObject' || name === 'endArray') return this.#closeFrame()
    if (end - start > this.#maxItemSize) throw this.#lexemeTooLarge(name, start)
    if (name === 'keyValue') return this.#key(frame!, token.value, start)
    // A value starts: the top-level one, or one in the frame on top.
    const isContainer = name === 'startObject' || name === 'startArray'
    let path = ''
    if (frame !== undefined) {
      if (frame.drop) {
        frame.drop = false
        if (isContainer) {
          this.#skipping = true
          this.#skipDepth = 1
          this.#skipFrame = null
        } else {
          this.#next(frame)
        }
        return
      }
      const segment = frame.isArray ? frame.index : frame.key
      this.#segments.push(segment)
      if (this.#regex !== null) path = frame.depth === 0 ? String(segment) : frame.path + '.' + segment
    }
    const selected = this.#regex !== null ? this.#regex.test(path) : this.#test!(this.#segments)
    if (selected) {
      if (frame !== undefined) this.#segments.pop()
      this.#itemUnderConstructor = frame !== undefined && !frame.isArray && frame.key === 'constructor'
      if (isContainer) {
        this.#itemStart = start
        this.#builder.start(name === 'startArray')
      } else {
        this.#finishItem(scalar(token), start, end)
        this.#next(frame)
      }
      return
    }
    if (!isContainer) {
      if (frame !== undefined) this.#segments.pop()
      this.#next(frame)
      return
    }
    const isArray = name === 'startArray'
    const isConstructorValue = !isArray && frame !== undefined && !frame.isArray && frame.key === 'constructor'
    const hold = isConstructorValue && this.#policy.constructorAction === 'remove' ? { start, items: [], sizes: [], error: null } : null
    if (hold !== null) this.#holds.push(hold)
    this.#frames.push({
      isArray, path, depth: this.#segments.length, isConstructorValue, hold,
      index: 0, key: '', keyOffset: 0, keys: isArray ? null : new Set(), keyChars: 0, drop: false
    })
  }

  // A key of an object around the selection.
  #key (frame: Frame, key: string, offset: number): void {
    const keys = frame.keys!
    frame.key = key
    frame.keyOffset = offset
    if (keys.has(key)) {
      this.#fail(invalidJsonError(`nexure cannot stream a selection out of an object with a key given twice: "${key}" appears again (JSON.parse would keep only its last value)`, { offset }))
    }
    keys.add(key)
    frame.keyChars += key.length
    this.#keyChars += key.length
    if (this.#keyChars > this.#maxItemSize) {
      throw itemTooLargeError('the keys kept of the objects around the selection (to refuse a key given twice), at the key', this.#maxItemSize, { offset })
    }
    const policy = this.#policy
    if (key === '__proto__' && policy.protoAction !== 'ignore') {
      if (policy.protoAction === 'error') this.#fail(forbiddenPropertyError({ offset }, 'key "__proto__"'))
      else frame.drop = true
    } else if (key === 'prototype' && frame.isConstructorValue && policy.constructorAction !== 'ignore') {
      if (policy.constructorAction === 'error') {
        this.#fail(forbiddenPropertyError({ offset }, 'key "constructor.prototype"'))
      } else {
        // The whole `constructor` object goes, and what it held back with it.
        this.#skipping = true
        this.#skipDepth = 1
        this.#skipFrame = frame
      }
    }
  }

  // The value after the current key or element was taken or passed over.
  #next (frame: Frame | undefined): void {
    if (frame?.isArray === true) frame.index++
  }

  #closeFrame (): void {
    const frame = this.#frames.pop()!
    if (frame.depth > 0) this.#segments.pop()
    this.#keyChars -= frame.keyChars
    const hold = frame.hold
    if (hold !== null) {
      this.#holds.pop()
      this.#held -= hold.items.length
      if (hold.error !== null) this.#fail(hold.error)
      for (let k = 0; k < hold.items.length; k++) this.#out(hold.items[k], hold.sizes[k]!)
    }
    this.#next(this.#frames[this.#frames.length - 1])
  }

  // A token inside a value that is not walked (a removed `__proto__` value, or the rest of a
  // removed `constructor` object).
  #skip (token: Token, start: number, end: number): void {
    const name = token.name
    if (end - start > this.#maxItemSize) throw this.#lexemeTooLarge(name, start)
    if (name === 'startObject' || name === 'startArray') this.#skipDepth++
    else if (name === 'endObject' || name === 'endArray') this.#skipDepth--
    if (this.#skipDepth > 0) return
    this.#skipping = false
    const removed = this.#skipFrame
    this.#skipFrame = null
    if (removed === null) {
      this.#next(this.#frames[this.#frames.length - 1])
      return
    }
    this.#frames.pop()
    this.#segments.pop()
    this.#keyChars -= removed.keyChars
    this.#holds.pop()
    this.#held -= removed.hold!.items.length
    this.#next(this.#frames[this.#frames.length - 1])
  }

  // A token of the selected value being built.
  #build (token: Token, end: number): void {
    const value = this.#builder.add(token)
    if (value === BUILDING) return
    this.#finishItem(value, this.#itemStart, end)
    this.#itemStart = -1
    this.#next(this.#frames[this.#frames.length - 1])
  }

  // A selected value is complete: checked as secure-json-parse would check it inside the whole body.
  #finishItem (value: unknown, start: number, end: number): void {
    const item = this.#nextItem()
    if (end - start > this.#maxItemSize) throw this.#itemTooLarge(start, item)
    const policy = this.#policy
    if (this.#itemUnderConstructor && policy.constructorAction !== 'ignore' && value !== null && typeof value === 'object' && Object.hasOwn(value, 'prototype')) {
      if (policy.constructorAction === 'error') this.#fail(forbiddenPropertyError({ offset: start, item }, 'key "constructor.prototype"'))
      return
    }
    if (this.#builder.suspect) {
      this.#builder.suspect = false
      try {
        secureScan(value, policy)
      } catch {
        this.#fail(forbiddenPropertyError({ offset: start, item }))
        return
      }
    }
    this.#out(value, end - start)
  }

  // An item of `size` bytes goes to the innermost hold, or out.
  #out (value: unknown, size: number): void {
    const hold = this.#holds[this.#holds.length - 1]
    if (hold !== undefined) {
      hold.items.push(value)
      hold.sizes.push(size)
      this.#held++
      return
    }
    this.#batcher.push(value, size)
  }

  // A refusal that a removal may still cancel: inside a held `constructor` object it waits for
  // the object's end (secure-json-parse never looks into an object it removed).
  #fail (error: LocatedError): void {
    const hold = this.#holds[this.#holds.length - 1]
    if (hold === undefined) throw error
    hold.error ??= error
  }

  /** The index of the next item: those handed out, in the batch being filled, and held back. */
  #nextItem (): number {
    return this.#batcher.emitted + this.#batcher.pending + this.#held
  }

  // ---- Limits and faults ---------------------------------------------------------------------

  // What is open at body offset `at` must still fit: the selected value, the held `constructor`
  // objects, and the lexeme the tokenizer holds.
  #checkOpen (at: number): void {
    if (this.#itemStart >= 0 && at - this.#itemStart > this.#maxItemSize) {
      throw this.#itemTooLarge(this.#itemStart, this.#nextItem())
    }
    for (const hold of this.#holds) {
      if (at - hold.start > this.#maxItemSize) {
        throw itemTooLargeError('an object under a "constructor" key, held back until it ends (constructorAction \'remove\'), starting', this.#maxItemSize, { offset: hold.start })
      }
    }
    const lexStart = this.#mirror.openLexemeStart
    if (this.#itemStart < 0 && lexStart >= 0 && at - lexStart > this.#maxItemSize) {
      throw this.#lexemeTooLarge(this.#mirror.openLexemeName, lexStart)
    }
  }

  #faultError (fault: MirrorFault | LocatedError): LocatedError {
    if (!(fault instanceof MirrorFault)) return fault
    const item = fault.tooDeep && this.#itemStart >= 0 ? this.#nextItem() : undefined
    return invalidJsonError(fault.detail, { offset: fault.offset, item })
  }

  #itemTooLarge (start: number, item: number): LocatedError {
    return itemTooLargeError('the selected value starting', this.#maxItemSize, { offset: start, item })
  }

  #lexemeTooLarge (name: string, start: number): LocatedError {
    const what = name === 'keyValue' ? 'a property name' : name === 'stringValue' ? 'a string' : 'a number'
    return itemTooLargeError(`${what} starting`, this.#maxItemSize, { offset: start })
  }
}
