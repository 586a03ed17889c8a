// Property-based tests (fast-check) of the two engines against the reference a buffered server
// uses: secure-json-parse on the whole body. For random JSON values written with random
// whitespace and escape spellings, under random chunkings, batch shapes and parse-run sizes, the
// engines yield exactly the reference's items; for randomly damaged bodies they never crash,
// never leak a pooled slab, never take long, and refuse exactly the bodies the reference refuses,
// with the same code, and the same location whatever the chunking.

import t, { type Test } from 'tap'
import fc from 'fast-check'
import { isDeepStrictEqual } from 'node:util'
import { BufferPool, JsonArrayScanner, NdjsonSplitter } from '../lib/index.js'
import type { JsonScannerOptions, NdjsonSplitterOptions } from '../lib/index.js'
import { collect, show, splitAt } from './helpers/chunking.js'
import type { Collected } from './helpers/chunking.js'
import { referenceJson, referenceJsonSeq, referenceNdjson, referenceNdjsonSkipping } from './helpers/reference.js'
import type { Outcome } from './helpers/reference.js'

/** secure-json-parse's own test for a body that may hold a forbidden key (any spelling). */
const SUSPECT_KEY = /"(?:_|\\u005[Ff])(?:_|\\u005[Ff])(?:p|\\u0070)(?:r|\\u0072)(?:o|\\u006[Ff])(?:t|\\u0074)(?:o|\\u006[Ff])(?:_|\\u005[Ff])(?:_|\\u005[Ff])"\s*:|"(?:c|\\u0063)(?:o|\\u006[Ff])(?:n|\\u006[Ee])(?:s|\\u0073)(?:t|\\u0074)(?:r|\\u0072)(?:u|\\u0075)(?:c|\\u0063)(?:t|\\u0074)(?:o|\\u006[Ff])(?:r|\\u0072)"\s*:/
/** The slowest one body may be, whole or in one-byte chunks; anything near it is a near-hang. */
const CASE_TIME_LIMIT_MS = 2000

// One small slab size for every run: partial items cross slab boundaries all the time.
const pool = new BufferPool({ slabSize: 24 })

// ---- arbitraries ---------------------------------------------------------------------------

/** A JSON tree kept as entry lists, so a `__proto__` key stays a key (an object literal would not keep it). */
type Node =
  | { kind: 'scalar', text: string }
  | { kind: 'string', value: string }
  | { kind: 'array', items: Node[] }
  | { kind: 'object', entries: Array<[string, Node]> }

const keyArb = fc.oneof(
  { weight: 6, arbitrary: fc.string({ maxLength: 6, unit: 'binary' }) },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'prototype', 'items', '') }
)

// Number spellings JSON allows, and some it does not (leading zeros, a bare '-', '.5'), so that
// refusals are compared too; the reference decides.
const numberArb = fc.oneof(
  { weight: 4, arbitrary: fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })).map(n => JSON.stringify(n)) },
  {
    weight: 2,
    arbitrary: fc.tuple(
      fc.constantFrom('', '-'), fc.stringMatching(/^[0-9]{1,4}$/), fc.constantFrom('', '.5', '.0012', '.'),
      fc.constantFrom('', 'e3', 'E-2', 'e+10', 'e', 'E400')
    ).map(parts => parts.join(''))
  }
)

const nodeArb: fc.Arbitrary<Node> = fc.letrec<{ node: Node, array: Node, object: Node, scalar: Node }>(tie => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('scalar'), tie('array'), tie('object')),
  scalar: fc.oneof(
    fc.string({ maxLength: 12, unit: 'binary' }).map((value): Node => ({ kind: 'string', value })),
    fc.string({ maxLength: 8, unit: fc.constantFrom('"', '\\', '[', ']', '{', '}', ',', ':', '\n', 'é', '😀', '\u2028', '\ufeff', '\u0000') })
      .map((value): Node => ({ kind: 'string', value })),
    numberArb.map((text): Node => ({ kind: 'scalar', text })),
    fc.constantFrom('true', 'false', 'null').map((text): Node => ({ kind: 'scalar', text }))
  ),
  array: fc.array(tie('node'), { maxLength: 6 }).map((items): Node => ({ kind: 'array', items })),
  object: fc.array(fc.tuple(keyArb, tie('node')), { maxLength: 5 }).map((entries): Node => ({ kind: 'object', entries }))
})).node

/** How a tree is written: whitespace between tokens and how strings are escaped, cycled from fc choices. */
interface Style {
  spaces: string[]
  escapes: boolean[]
}

const styleArb = (newlines: boolean): fc.Arbitrary<Style> => fc.record({
  spaces: fc.array(fc.constantFrom(...(newlines ? ['', '', ' ', '\n', '\t', '\r\n', '  \n '] : ['', '', ' ', '\t', '\r', ' \t '])), { minLength: 1, maxLength: 16 }),
  escapes: fc.array(fc.boolean(), { minLength: 1, maxLength: 16 })
})

class Writer {
  #space = 0
  #escape = 0
  constructor (readonly style: Style) {}

  ws (): string {
    return this.style.spaces[this.#space++ % this.style.spaces.length]!
  }

  // JSON.stringify's spelling, with some characters written as \uXXXX (either hex case): the
  // spelling must not change the value, and `\u005f_proto__` must still be caught.
  string (value: string): string {
    const plain = JSON.stringify(value)
    let text = '"'
    for (const char of plain.slice(1, -1).match(/\\u[0-9a-f]{4}|\\.|[\s\S]/g) ?? []) {
      const escape = this.style.escapes[this.#escape++ % this.style.escapes.length]!
      if (!escape || char.length !== 1) {
        text += char
        continue
      }
      const hex = char.charCodeAt(0).toString(16).padStart(4, '0')
      text += '\\u' + (this.#escape % 3 === 0 ? hex.toUpperCase() : hex)
    }
    return text + '"'
  }

  node (node: Node): string {
    switch (node.kind) {
      case 'scalar': return node.text
      case 'string': return this.string(node.value)
      case 'array': return '[' + (node.items.length === 0 ? this.ws() : node.items.map(item => this.ws() + this.node(item) + this.ws()).join(',')) + ']'
      case 'object': return '{' + (node.entries.length === 0
        ? this.ws()
        : node.entries.map(([key, value]) => this.ws() + this.string(key) + this.ws() + ':' + this.ws() + this.node(value) + this.ws()).join(',')) + '}'
    }
  }
}

function jsonBody (root: Node, style: Style, bom: boolean): Buffer {
  const writer = new Writer(style)
  return Buffer.from((bom ? '\ufeff' : '') + writer.ws() + writer.node(root) + writer.ws())
}

interface NdjsonShape {
  lines: Array<Node | 'blank' | 'spaces'>
  crlf: boolean[]
  lastNewline: boolean
}

const ndjsonShapeArb: fc.Arbitrary<NdjsonShape> = fc.record({
  lines: fc.array(fc.oneof({ weight: 6, arbitrary: nodeArb }, { weight: 1, arbitrary: fc.constantFrom('blank' as const, 'spaces' as const) }), { maxLength: 8 }),
  crlf: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
  lastNewline: fc.boolean()
})

function ndjsonBody (shape: NdjsonShape, style: Style): Buffer {
  const writer = new Writer(style)
  const lines = shape.lines.map(line => line === 'blank' ? '' : line === 'spaces' ? ' \t ' : writer.ws() + writer.node(line) + writer.ws())
  let text = ''
  lines.forEach((line, k) => {
    const last = k === lines.length - 1
    text += line + (last && !shape.lastNewline ? '' : shape.crlf[k % shape.crlf.length]! ? '\r\n' : '\n')
  })
  return Buffer.from(text)
}

/** Where the bytes are cut: not at all, between every byte, or at fc-chosen offsets. */
type Cutting = { kind: 'whole' } | { kind: 'bytes' } | { kind: 'cuts', cuts: number[] }

const cuttingArb: fc.Arbitrary<Cutting> = fc.oneof(
  { weight: 1, arbitrary: fc.constant<Cutting>({ kind: 'whole' }) },
  { weight: 1, arbitrary: fc.constant<Cutting>({ kind: 'bytes' }) },
  { weight: 4, arbitrary: fc.array(fc.nat(), { minLength: 1, maxLength: 24 }).map((cuts): Cutting => ({ kind: 'cuts', cuts })) }
)

function cut (body: Buffer, cutting: Cutting): Buffer[] {
  if (cutting.kind === 'whole' || body.length < 2) return [body]
  if (cutting.kind === 'bytes') return Array.from({ length: body.length }, (_, i) => body.subarray(i, i + 1))
  return splitAt(body, cutting.cuts.map(c => 1 + (c % (body.length - 1))))
}

/** Byte-level damage: replace, insert or delete, mostly with bytes that matter to a scanner. */
interface Edit { at: number, op: 'replace' | 'insert' | 'delete', byte: number }

const INTERESTING = [0x22, 0x5c, 0x5b, 0x5d, 0x7b, 0x7d, 0x2c, 0x3a, 0x20, 0x0a, 0x0d, 0x30, 0x2d, 0x2e, 0x65, 0x75, 0x6e,
  0x74, 0x00, 0x1f, 0x7f, 0x80, 0xbf, 0xc0, 0xc3, 0xe2, 0xed, 0xef, 0xbb, 0xf0, 0xf4, 0xf8, 0xff]
const editArb: fc.Arbitrary<Edit> = fc.record({
  at: fc.nat(),
  op: fc.constantFrom('replace' as const, 'insert' as const, 'delete' as const),
  byte: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...INTERESTING) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) })
})

function damage (body: Buffer, edits: Edit[]): Buffer {
  const bytes = [...body]
  for (const { at, op, byte } of edits) {
    const i = at % (bytes.length + 1)
    if (op === 'insert' || i === bytes.length) bytes.splice(i, 0, byte)
    else if (op === 'replace') bytes[i] = byte
    else bytes.splice(i, 1)
  }
  return Buffer.from(bytes)
}

const scannerOptionsArb = fc.record({
  batchSize: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.constant(1000)),
  maxParseBytes: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constant(32 * 1024))
})

// ---- running and comparing -----------------------------------------------------------------

function timed (run: () => Collected, what: string): Collected {
  const started = performance.now()
  const result = run()
  const elapsed = performance.now() - started
  if (elapsed > CASE_TIME_LIMIT_MS) throw new Error(`${what} took ${elapsed.toFixed(0)} ms`)
  return result
}

function scan (chunks: Buffer[], options: JsonScannerOptions): Collected {
  return timed(() => collect(onItems => new JsonArrayScanner({ pool, ...options }, onItems), chunks), 'the scanner')
}

function split (chunks: Buffer[], options: NdjsonSplitterOptions): Collected {
  return timed(() => collect(onItems => new NdjsonSplitter({ pool, ...options }, onItems), chunks), 'the splitter')
}

/**
 * Throws (with what differs) unless `result` is what the reference says and, for a refusal, the
 * same error as `whole` (the body in one chunk, default options). Pooled slabs must all be back.
 */
function expectSame (body: Buffer, result: Collected, reference: Outcome, whole: Collected, batchSize: number, lines: boolean): void {
  const where = show(body, 300)
  if (pool.stats.inUse !== 0) throw new Error(`${pool.stats.inUse} pooled slabs not released after ${where}`)
  const error = result.error
  if (error !== undefined && (typeof error.code !== 'string' || !error.code.startsWith('FST_NEXURE_'))) {
    throw new Error(`crashed with ${error.name}: ${error.message} on ${where}`)
  }
  if (reference.code === undefined) {
    if (error !== undefined) throw new Error(`refused (${error.code}: ${error.message}) but the reference accepts ${where}`)
    if (!isDeepStrictEqual(result.items, reference.items)) {
      throw new Error(`items ${show(result.items, 300)} but the reference gives ${show(reference.items, 300)} for ${where}`)
    }
    const sizes = result.batches
    if (sizes.some((size, k) => size === 0 || size > batchSize || (k < sizes.length - 1 && size !== batchSize))) {
      throw new Error(`batches of ${sizes.join(',')} for batchSize ${batchSize}`)
    }
    return
  }
  if (error === undefined) throw new Error(`accepted ${show(result.items, 200)} but the reference refuses (${reference.code}) ${where}`)
  // The scanner reports the first fault in byte order; secure-json-parse reports a syntax error
  // before it looks for forbidden keys. Both refuse: the code may differ only in that case.
  const firstFaultForbidden = error.code === 'FST_NEXURE_FORBIDDEN_PROPERTY' && reference.code === 'FST_NEXURE_INVALID_JSON' && SUSPECT_KEY.test(body.toString('utf8'))
  if (error.code !== reference.code && !firstFaultForbidden) throw new Error(`${error.code} (${error.message}) but the reference says ${reference.code} for ${where}`)
  if (lines && error.line !== reference.line) throw new Error(`line ${error.line} but the reference fails on line ${reference.line}`)
  if (error.code !== 'FST_NEXURE_EMPTY_BODY' && (typeof error.offset !== 'number' || error.offset < 0 || error.offset > body.length)) {
    throw new Error(`error without a byte offset in the body: ${error.message}`)
  }
  const first = whole.error
  if (first === undefined || first.code !== error.code || first.offset !== error.offset || first.message !== error.message) {
    throw new Error(`"${error.message}" under this chunking, "${first?.message}" for the whole body ${where} (hex ${body.toString('hex')})`)
  }
}

function check<Ts extends unknown[]> (t: Test, name: string, property: fc.IProperty<Ts>, numRuns: number): void {
  const started = performance.now()
  const details = fc.check(property, { numRuns })
  const seconds = ((performance.now() - started) / 1000).toFixed(1)
  if (details.failed) t.fail(name, { error: String(details.errorInstance), counterexample: fc.defaultReportMessage(details) })
  else t.pass(`${name}: ${details.numRuns} runs in ${seconds} s (seed ${details.seed})`)
  t.equal(pool.stats.inUse, 0, 'no pooled slab left in use')
}

// ---- properties ----------------------------------------------------------------------------

t.test('JSON: random values under random chunkings equal secure-json-parse of the whole body', async t => {
  check(t, 'valid bodies', fc.property(nodeArb, styleArb(true), fc.boolean(), cuttingArb, scannerOptionsArb, (root, style, bom, cutting, options) => {
    const body = jsonBody(root, style, bom)
    const reference = referenceJson(body)
    const whole = scan([body], {})
    expectSame(body, whole, reference, whole, 1000, false)
    expectSame(body, scan(cut(body, cutting), options), reference, whole, options.batchSize, false)
  }), 10000)
})

t.test('JSON: top-level arrays of fc.jsonValue() under random chunkings', async t => {
  // fc's own JSON generator, with JSON.stringify's spacing: another source of values than ours.
  const arb = fc.tuple(fc.array(fc.jsonValue({ maxDepth: 4, stringUnit: 'binary' }), { maxLength: 20 }), fc.constantFrom(undefined, 0, 1, 2, '\t'))
  check(t, 'fc.jsonValue arrays', fc.property(arb, cuttingArb, scannerOptionsArb, ([values, space], cutting, options) => {
    const body = Buffer.from(JSON.stringify(values, null, space))
    const reference = referenceJson(body)
    const whole = scan([body], {})
    expectSame(body, whole, reference, whole, 1000, false)
    expectSame(body, scan(cut(body, cutting), options), reference, whole, options.batchSize, false)
  }), 4000)
})

t.test('JSON: fc.json() texts, as they are', async t => {
  check(t, 'fc.json texts', fc.property(fc.json({ maxDepth: 5 }), cuttingArb, scannerOptionsArb, (text, cutting, options) => {
    const body = Buffer.from(text)
    const reference = referenceJson(body)
    const whole = scan([body], {})
    expectSame(body, whole, reference, whole, 1000, false)
    expectSame(body, scan(cut(body, cutting), options), reference, whole, options.batchSize, false)
  }), 4000)
})

t.test('JSON: damaged bodies never crash, hang or leak, and are refused exactly when the reference refuses', async t => {
  let refused = 0
  let runs = 0
  check(t, 'damaged bodies', fc.property(nodeArb, styleArb(true), fc.boolean(), fc.array(editArb, { minLength: 1, maxLength: 4 }), cuttingArb, scannerOptionsArb,
    (root, style, bom, edits, cutting, options) => {
      const body = damage(jsonBody(root, style, bom), edits)
      const reference = referenceJson(body)
      runs++
      if (reference.code !== undefined) refused++
      const whole = scan([body], {})
      expectSame(body, whole, reference, whole, 1000, false)
      expectSame(body, scan(cut(body, cutting), options), reference, whole, options.batchSize, false)
    }), 20000)
  t.ok(refused > runs * 0.3 && refused < runs, `a mix of refused (${refused}) and accepted (${runs - refused}) bodies`)
})

// Keys of the objects a `*` or entries walks: unique, none spelled like an array index (a parsed
// object puts those first, streaming keeps the document's order) and no `constructor` (a
// `constructor.prototype` the policy removes is refused on the way, where JSON.parse would
// just drop it).
const walkedKeyArb = keyArb.filter(key => key !== 'constructor' && !/^(?:0|[1-9][0-9]*)$/.test(key))
const actionArb = fc.constantFrom('error' as const, 'remove' as const, 'ignore' as const)
const selectionArb = fc.record({
  groups: fc.uniqueArray(fc.tuple(walkedKeyArb, fc.array(nodeArb, { maxLength: 4 })), { selector: ([key]) => key, maxLength: 5 }),
  asArray: fc.boolean(),
  entries: fc.boolean(),
  policy: fc.record({ protoAction: actionArb, constructorAction: actionArb })
})

t.test('JSON: wildcard paths and entries over random values equal secure-json-parse of the whole body', async t => {
  check(t, 'wildcards and entries', fc.property(selectionArb, styleArb(true), cuttingArb, scannerOptionsArb, (selection, style, cutting, options) => {
    const { groups, asArray, entries, policy } = selection
    const arrays = groups.map(([key, items]): [string, Node] => [key, { kind: 'array', items }])
    // data.*: {k: [...]} or [[...]]; entries at data: {k: [...]}; entries at data.*: [{k: [...]}, ...].
    const data: Node = !asArray
      ? { kind: 'object', entries: arrays }
      : entries ? { kind: 'array', items: arrays.map((pair): Node => ({ kind: 'object', entries: [pair] })) } : { kind: 'array', items: arrays.map(([, array]) => array) }
    const root: Node = { kind: 'object', entries: [['n', { kind: 'scalar', text: '1' }], ['data', data]] }
    const path = entries && !asArray ? 'data' : 'data.*'
    const body = jsonBody(root, style, false)
    const reference = referenceJson(body, path, policy, entries)
    const whole = scan([body], { path, entries, ...policy })
    expectSame(body, whole, reference, whole, 1000, false)
    expectSame(body, scan(cut(body, cutting), { ...options, path, entries, ...policy }), reference, whole, options.batchSize, false)
  }), 1500)
})

t.test('NDJSON: random lines under random chunkings equal secure-json-parse line by line', async t => {
  check(t, 'valid NDJSON', fc.property(ndjsonShapeArb, styleArb(false), cuttingArb, fc.integer({ min: 1, max: 5 }), (shape, style, cutting, batchSize) => {
    const body = ndjsonBody(shape, style)
    const reference = referenceNdjson(body)
    const whole = split([body], {})
    expectSame(body, whole, reference, whole, 1000, true)
    expectSame(body, split(cut(body, cutting), { batchSize }), reference, whole, batchSize, true)
  }), 8000)
})

t.test('NDJSON: damaged bodies are refused exactly when the reference refuses, on the same line', async t => {
  let refused = 0
  let runs = 0
  check(t, 'damaged NDJSON', fc.property(ndjsonShapeArb, styleArb(false), fc.array(editArb, { minLength: 1, maxLength: 4 }), cuttingArb, fc.integer({ min: 1, max: 5 }),
    (shape, style, edits, cutting, batchSize) => {
      const body = damage(ndjsonBody(shape, style), edits)
      const reference = referenceNdjson(body)
      runs++
      if (reference.code !== undefined) refused++
      const whole = split([body], {})
      expectSame(body, whole, reference, whole, 1000, true)
      expectSame(body, split(cut(body, cutting), { batchSize }), reference, whole, batchSize, true)
    }), 20000)
  t.ok(refused > runs * 0.2 && refused < runs, `a mix of refused (${refused}) and accepted (${runs - refused}) bodies`)
})

/** The NDJSON shape as a JSON text sequence: each line a record after RS, values may span lines. */
function jsonSeqBody (shape: NdjsonShape, style: Style): Buffer {
  const writer = new Writer(style)
  let text = ''
  shape.lines.forEach((line, k) => {
    const value = line === 'blank' ? '' : line === 'spaces' ? ' \n ' : writer.ws() + writer.node(line) + writer.ws()
    const last = k === shape.lines.length - 1
    text += '\x1e' + value + (last && !shape.lastNewline ? '' : shape.crlf[k % shape.crlf.length]! ? '\r\n' : '\n')
  })
  return Buffer.from(text)
}

/** The splitter on a JSON sequence, its error's record put where expectSame looks for a line. */
function splitSeq (chunks: Buffer[], options: NdjsonSplitterOptions): Collected {
  const result = split(chunks, { ...options, format: 'json-seq' })
  if (result.error !== undefined) result.error.line = (result.error as { record?: number }).record
  return result
}

t.test('JSON sequences: random records under random chunkings equal secure-json-parse record by record', async t => {
  check(t, 'valid json-seq', fc.property(ndjsonShapeArb, styleArb(true), cuttingArb, fc.integer({ min: 1, max: 5 }), (shape, style, cutting, batchSize) => {
    const body = jsonSeqBody(shape, style)
    const reference = referenceJsonSeq(body)
    const whole = splitSeq([body], {})
    expectSame(body, whole, reference, whole, 1000, true)
    expectSame(body, splitSeq(cut(body, cutting), { batchSize }), reference, whole, batchSize, true)
  }), 5000)
})

t.test('JSON sequences: damaged bodies are refused exactly when the reference refuses, in the same record', async t => {
  const withRs = fc.oneof({ weight: 4, arbitrary: editArb }, { weight: 1, arbitrary: editArb.map(edit => ({ ...edit, byte: 0x1e })) })
  check(t, 'damaged json-seq', fc.property(ndjsonShapeArb, styleArb(true), fc.array(withRs, { minLength: 1, maxLength: 4 }), cuttingArb, fc.integer({ min: 1, max: 5 }),
    (shape, style, edits, cutting, batchSize) => {
      const body = damage(jsonSeqBody(shape, style), edits)
      const reference = referenceJsonSeq(body)
      const whole = splitSeq([body], {})
      expectSame(body, whole, reference, whole, 1000, true)
      expectSame(body, splitSeq(cut(body, cutting), { batchSize }), reference, whole, batchSize, true)
    }), 10000)
})

t.test("NDJSON with skip: damaged bodies keep exactly the lines that parse, whatever the chunking", async t => {
  check(t, 'skipping NDJSON', fc.property(ndjsonShapeArb, styleArb(false), fc.array(editArb, { minLength: 1, maxLength: 4 }), cuttingArb, fc.integer({ min: 1, max: 5 }),
    (shape, style, edits, cutting, batchSize) => {
      const body = damage(ndjsonBody(shape, style), edits)
      const reference = referenceNdjsonSkipping(body)
      const skipped: number[] = []
      const result = split(cut(body, cutting), { batchSize, skip: (error, fault) => {
        if (error.code !== 'FST_NEXURE_INVALID_JSON' || fault.offset < 0 || fault.offset > body.length) throw new Error(`skipped with ${error.code} at ${fault.offset}`)
        skipped.push(fault.line)
      } })
      if (pool.stats.inUse !== 0) throw new Error('pooled slabs not released')
      if ('code' in reference) {
        if (result.error?.code !== reference.code || result.error.line !== reference.line) throw new Error(`${result.error?.code} line ${result.error?.line}, the reference ${reference.code} line ${reference.line} for ${show(body, 300)}`)
        return
      }
      if (result.error !== undefined) throw new Error(`refused (${result.error.message}) ${show(body, 300)}`)
      if (!isDeepStrictEqual(result.items, reference.items) || !isDeepStrictEqual(skipped, reference.skipped)) {
        throw new Error(`kept ${show(result.items, 200)} skipped ${skipped}, the reference ${show(reference.items, 200)} skipped ${reference.skipped} for ${show(body, 300)}`)
      }
    }), 10000)
})

t.test('arbitrary bytes (not JSON-shaped at all) never crash, hang or leak either engine', async t => {
  const bytesArb = fc.uint8Array({ maxLength: 200 }).map(bytes => Buffer.from(bytes))
  check(t, 'random bytes', fc.property(bytesArb, cuttingArb, scannerOptionsArb, (body, cutting, options) => {
    const json = referenceJson(body)
    const wholeJson = scan([body], {})
    expectSame(body, wholeJson, json, wholeJson, 1000, false)
    expectSame(body, scan(cut(body, cutting), options), json, wholeJson, options.batchSize, false)
    const ndjson = referenceNdjson(body)
    const wholeNdjson = split([body], {})
    expectSame(body, wholeNdjson, ndjson, wholeNdjson, 1000, true)
    expectSame(body, split(cut(body, cutting), { batchSize: options.batchSize }), ndjson, wholeNdjson, options.batchSize, true)
  }), 10000)
})

// Two NDJSON refusals fast-check found, kept as fixed examples: the error must not depend on
// whether the line arrived in one chunk with other lines or in pieces.
t.test('NDJSON: the error for a bad line is the same in one chunk and byte by byte', async t => {
  const bodies = [
    '"}\r\r\n', // a line ending in two '\r': only one is the line ending
    '\u001f\r[[\t]\r,\r"",\tfalse\r]\r\r\n[\t]\r' // a long bad line: V8 quotes a truncated snippet
  ]
  for (const text of bodies) {
    const body = Buffer.from(text)
    const whole = split([body], {})
    const bytes = split(cut(body, { kind: 'bytes' }), {})
    t.equal(whole.error?.code, 'FST_NEXURE_INVALID_JSON', `${show(body)} is refused`)
    t.equal(bytes.error?.message, whole.error?.message, `${show(body)}: same message`)
    t.equal(bytes.error?.offset, whole.error?.offset, `${show(body)}: same offset`)
    t.notMatch(whole.error?.message ?? '', /is not valid JSON/, 'no quoted fragment of the body in the message')
    t.notMatch(bytes.error?.message ?? '', /is not valid JSON/, 'no quoted fragment of the body in the message (byte by byte)')
  }
})
