// Differential tests: for generated and damaged bodies, the streamed result under every chunking
// equals the reference (secure-json-parse on the whole body, as Fastify parses JSON), and exactly
// the bodies the reference rejects are rejected, with the same code and the same location
// whatever the chunking.

import t from 'tap'
import { isDeepStrictEqual } from 'node:util'
import { JsonArrayScanner } from '../../lib/core/array-scanner.js'
import type { JsonScannerOptions } from '../../lib/core/array-scanner.js'
import { NdjsonSplitter } from '../../lib/core/ndjson-splitter.js'
import type { NdjsonSplitterOptions } from '../../lib/core/ndjson-splitter.js'
import { BufferPool } from '../../lib/core/buffer-pool.js'
import { parseJsonBody, parseNdjsonBody, parseNdjsonWhole } from '../../lib/core/whole-body.js'
import type { PoisoningAction } from '../../lib/core/engine-options.js'
import { chunkings, collect, show } from '../helpers/chunking.js'
import type { Collected } from '../helpers/chunking.js'
import { JsonGen } from '../helpers/json-gen.js'
import { referenceJson, referenceNdjson } from '../helpers/reference.js'
import type { Outcome } from '../helpers/reference.js'

const pool = new BufferPool({ slabSize: 32 })

interface Variant { batchSize: number, maxParseBytes: number }
const VARIANTS: Variant[] = [
  { batchSize: 1000, maxParseBytes: 32 * 1024 },
  { batchSize: 3, maxParseBytes: 1 },
  { batchSize: 1, maxParseBytes: 24 },
  { batchSize: 7, maxParseBytes: 100 }
]

// Batches cut by count only unless a test gives batchBytes: most tests here pin the count's
// batch shape (every batch full but the last); the byte bound has a test of its own.
function streamJson (chunks: Buffer[], options: JsonScannerOptions): Collected {
  return collect(onItems => new JsonArrayScanner({ pool, batchBytes: Infinity, ...options }, onItems), chunks)
}

function streamNdjson (chunks: Buffer[], options: NdjsonSplitterOptions): Collected {
  return collect(onItems => new NdjsonSplitter({ pool, batchBytes: Infinity, ...options }, onItems), chunks)
}

/**
 * Runs one body through every chunking and compares with the reference. Returns a description
 * of the first difference, or '' when there is none.
 */
function compare (
  body: Buffer, reference: Outcome, stream: (chunks: Buffer[]) => Collected, batchSize: number,
  options: { seed: number, codes: boolean, lines?: boolean, allowTwice?: boolean, byteBound?: boolean }
): string {
  let firstError: Collected['error']
  for (const { name, chunks } of chunkings(body, { seed: options.seed, randomSplits: 6 })) {
    const result = stream(chunks)
    if (pool.stats.inUse !== 0) return `${name}: ${pool.stats.inUse} pooled buffers not released`
    if (reference.code === undefined) {
      if (result.error !== undefined) {
        if (options.allowTwice === true && /path given twice/.test(result.error.message)) continue
        return `${name}: rejected (${result.error.code}: ${show(result.error.message, 400)}) but the reference accepts`
      }
      if (!isDeepStrictEqual(result.items, reference.items)) {
        return `${name}: items differ: ${show(result.items, 400)} vs ${show(reference.items, 400)}`
      }
      const sizes = result.batches
      // Under a byte bound, a batch may end short of batchSize anywhere; never empty, never over.
      const full = (size: number, k: number): boolean => options.byteBound === true || k === sizes.length - 1 || size === batchSize
      if (sizes.some((size, k) => size === 0 || size > batchSize || !full(size, k))) {
        return `${name}: batches of sizes ${sizes.join(',')} for batchSize ${batchSize}`
      }
    } else {
      const error = result.error
      if (error === undefined) return `${name}: accepted ${show(result.items, 400)} but the reference rejects (${reference.code})`
      if (typeof error.offset !== 'number' || !/at byte offset \d+/.test(error.message) || typeof error.code !== 'string') {
        if (error.code !== 'FST_NEXURE_EMPTY_BODY') return `${name}: error without a location: ${error.message}`
      }
      if (options.codes && error.code !== reference.code) return `${name}: ${error.code} (${error.message}) but the reference says ${reference.code}`
      if (options.lines === true && error.line !== reference.line) return `${name}: line ${error.line} but the reference says line ${reference.line}`
      if (firstError === undefined) {
        firstError = error
      } else if (error.code !== firstError.code || error.offset !== firstError.offset || error.message !== firstError.message) {
        return `${name}: "${error.message}" differs from the whole body's "${firstError.message}"`
      }
    }
  }
  return ''
}

function describe (body: Buffer): string {
  return show(body, 300)
}

t.test('generated top-level arrays: same items under every chunking and batch shape', async t => {
  const gen = new JsonGen(101)
  let failures = 0
  for (let k = 0; k < 500 && failures < 5; k++) {
    const body = Buffer.from(gen.arrayBody(gen.int(12)))
    const variant = VARIANTS[k % VARIANTS.length]!
    const reference = referenceJson(body, undefined)
    t.equal(reference.code, undefined, 'the generator writes valid JSON')
    const difference = compare(body, reference, chunks => streamJson(chunks, variant), variant.batchSize, { seed: k, codes: true })
    if (difference !== '') failures++
    t.equal(difference, '', `body #${k} ${describe(body)}`)
  }
})

t.test('larger bodies: carry-over across many chunks, runs cut by bytes and by batch room', async t => {
  const gen = new JsonGen(606, { maxDepth: 5, maxWidth: 8 })
  for (let k = 0; k < 40; k++) {
    let body: Buffer = Buffer.from(gen.arrayBody(50 + gen.int(250)))
    if (k % 2 === 1) body = gen.mutate(body)
    const variant = { batchSize: 1 + gen.int(120), maxParseBytes: 1 + gen.int(3000) }
    const reference = referenceJson(body, undefined)
    const difference = compare(body, reference, chunks => streamJson(chunks, variant), variant.batchSize, { seed: k, codes: true })
    t.equal(difference, '', `${body.length} bytes, batchSize ${variant.batchSize}, maxParseBytes ${variant.maxParseBytes}`)
  }
})

t.test('batches cut by bytes too: same items, and the same errors, under every chunking, byte bound and parse size', async t => {
  const gen = new JsonGen(707, { maxDepth: 5, maxWidth: 8 })
  for (let k = 0; k < 60; k++) {
    let body: Buffer = Buffer.from(gen.arrayBody(20 + gen.int(200)))
    if (k % 3 === 2) body = gen.mutate(body)
    const variant = { batchSize: 1 + gen.int(200), batchBytes: 1 + gen.int(2000), maxParseBytes: [1, 24, 100, 32 * 1024][k % 4]! }
    const reference = referenceJson(body, undefined)
    const difference = compare(body, reference, chunks => streamJson(chunks, variant), variant.batchSize, { seed: k, codes: true, byteBound: true })
    t.equal(difference, '', `${body.length} bytes, ${JSON.stringify(variant)}`)
  }
  for (let k = 0; k < 60; k++) {
    const lines = Array.from({ length: 5 + gen.int(60) }, () => JSON.stringify(JSON.parse(gen.arrayBody(gen.int(4))))).join('\n')
    let body: Buffer = Buffer.from(lines)
    if (k % 3 === 2) body = gen.mutate(body)
    const variant = { batchSize: 1 + gen.int(50), batchBytes: 1 + gen.int(500) }
    const reference = referenceNdjson(body)
    const difference = compare(body, reference, chunks => streamNdjson(chunks, variant), variant.batchSize, { seed: k, codes: true, lines: true, byteBound: true })
    t.equal(difference, '', `NDJSON, ${body.length} bytes, ${JSON.stringify(variant)}`)
  }
})

t.test('damaged arrays are rejected exactly when the reference rejects them, same code, same location', async t => {
  const gen = new JsonGen(202)
  let rejected = 0
  let failures = 0
  for (let k = 0; k < 1500 && failures < 5; k++) {
    const body = gen.mutate(Buffer.from(gen.arrayBody(1 + gen.int(6))))
    const variant = VARIANTS[k % VARIANTS.length]!
    const reference = referenceJson(body, undefined)
    if (reference.code !== undefined) rejected++
    const difference = compare(body, reference, chunks => streamJson(chunks, variant), variant.batchSize, { seed: k, codes: true })
    if (difference !== '') failures++
    t.equal(difference, '', `body #${k} ${describe(body)}`)
    const whole = streamJson([body], {})
    let buffered: Outcome
    try {
      buffered = { items: [parseJsonBody(body)] }
    } catch (err) {
      const coded = err as Error & { code: string, offset?: number }
      buffered = { code: coded.code }
      t.equal(coded.offset, whole.error?.offset, 'parseJsonBody locates the fault as the scanner does')
    }
    t.equal(buffered.code, reference.code, 'parseJsonBody rejects as the reference does')
  }
  t.ok(rejected > 750 && rejected < 1500, `a fair mix of rejected (${rejected}) and accepted bodies`)
})

t.test('top-level values that are not arrays are one item', async t => {
  const gen = new JsonGen(303)
  for (let k = 0; k < 120; k++) {
    const text = gen.ws() + (k % 2 === 0 ? gen.object(1) : gen.scalar()) + gen.ws()
    const body = Buffer.from(k % 5 === 0 ? '\ufeff' + text : text)
    const reference = referenceJson(body, undefined)
    t.equal(compare(body, reference, chunks => streamJson(chunks, {}), 1000, { seed: k, codes: true }), '', describe(body))
  }
})

t.test('paths: the array at the path, siblings validated and dropped', async t => {
  const gen = new JsonGen(404)
  const shapes: Array<{ path: string, wrap: (array: string) => string }> = [
    { path: 'items', wrap: a => `{${gen.ws()}"meta"${gen.ws()}:${gen.value(1)},"items":${gen.ws()}${a}${gen.ws()},"n":${gen.scalar()}}` },
    { path: 'data.rows', wrap: a => `{"data":{${gen.ws()}"x":${gen.array(2, 2)},${gen.ws()}"rows"${gen.ws()}:${a}},"z":${gen.object(2, 2)}}` },
    { path: 'a.0.b', wrap: a => `{"a":[{"b":${a},"c":${gen.scalar()}},${gen.value(2)}]}` },
    { path: 'a.1', wrap: a => `{"a":[${gen.value(2)},${gen.ws()}${a}${gen.ws()},${gen.value(2)}]}` },
    { path: 'items', wrap: a => `{"it\\u0065ms":${a}}` }
  ]
  let failures = 0
  for (let k = 0; k < 500 && failures < 5; k++) {
    const shape = shapes[k % shapes.length]!
    let body: Buffer = Buffer.from(gen.ws() + shape.wrap(gen.array(1, gen.int(8))) + gen.ws())
    const damaged = k % 2 === 1
    if (damaged) body = gen.mutate(body)
    const variant = VARIANTS[k % VARIANTS.length]!
    const reference = referenceJson(body, shape.path)
    if (!damaged) t.equal(reference.code, undefined, 'valid before damage')
    const difference = compare(body, reference, chunks => streamJson(chunks, { ...variant, path: shape.path }), variant.batchSize,
      { seed: k, codes: !damaged, allowTwice: true })
    if (difference !== '') failures++
    t.equal(difference, '', `${shape.path} body #${k} ${describe(body)}`)
  }
})

/**
 * An object whose values `value()` writes, with keys that a `*` or entries may walk: unique, and
 * none spelled like an array index (a parsed object puts those first; streaming keeps the
 * document's order, which its own tests pin).
 */
function walkableObject (gen: JsonGen, width: number, value: () => string): string {
  const seen = new Set<string>()
  const parts: string[] = []
  for (let k = 0; k < width; k++) {
    let key = gen.string()
    const decoded = JSON.parse(key) as string
    if (seen.has(decoded) || /^(?:0|[1-9][0-9]*)$/.test(decoded)) key = `"k${k}"`
    seen.add(JSON.parse(key) as string)
    parts.push(`${gen.ws()}${key}${gen.ws()}:${gen.ws()}${value()}${gen.ws()}`)
  }
  return '{' + (parts.length === 0 ? gen.ws() : parts.join(',')) + '}'
}

t.test('wildcard paths: the items of every matching array, in document order, as the reference selects them', async t => {
  const gen = new JsonGen(707)
  const rows = (): string => gen.array(1, gen.int(5))
  // Now and then a match that is not what the path steps into: a 400 naming it.
  const odd = (make: () => string) => (): string => gen.random() < 0.08 ? gen.scalar() : make()
  const shapes: Array<{ path: string, body: () => string }> = [
    { path: 'data.*.rows', body: () => `{"meta":${gen.value(1)},"data":${walkableObject(gen, gen.int(4), odd(() => `{"x":${gen.value(2)},"rows":${rows()}}`))},"z":${gen.scalar()}}` },
    { path: 'data.*.rows', body: () => `{"data":[${Array.from({ length: gen.int(4) }, odd(() => `{"rows":${rows()},"y":${gen.value(2)}}`)).join(',')}]}` },
    { path: '*.items', body: () => `[${Array.from({ length: gen.int(4) }, () => `{"items":${rows()}}`).join(`,${gen.ws()}`)}]` },
    { path: 'groups.*', body: () => `{"groups":${walkableObject(gen, gen.int(5), odd(rows))}}` },
    { path: '*', body: () => gen.random() < 0.5 ? walkableObject(gen, gen.int(4), odd(rows)) : `[${Array.from({ length: gen.int(4) }, rows).join(',')}]` },
    { path: 'a.*.0', body: () => `{"a":${walkableObject(gen, gen.int(3), () => `[${rows()},${gen.value(1)}]`)}}` }
  ]
  let failures = 0
  let selected = 0
  for (let k = 0; k < 480 && failures < 5; k++) {
    const shape = shapes[k % shapes.length]!
    let body: Buffer = Buffer.from(gen.ws() + shape.body() + gen.ws())
    const damaged = k % 3 === 2
    if (damaged) body = gen.mutate(body)
    const variant = VARIANTS[k % VARIANTS.length]!
    const reference = referenceJson(body, shape.path)
    if (reference.items !== undefined && reference.items.length > 0) selected++
    const difference = compare(body, reference, chunks => streamJson(chunks, { ...variant, path: shape.path }), variant.batchSize,
      { seed: k, codes: !damaged, allowTwice: damaged })
    if (difference !== '') failures++
    t.equal(difference, '', `${shape.path} body #${k} ${describe(body)}`)
  }
  t.ok(selected > 150, `${selected} bodies select items`)
})

t.test('entries: the pairs of the object, in document order, as the reference has them', async t => {
  const gen = new JsonGen(808)
  const shapes: Array<{ path: string | undefined, body: () => string }> = [
    { path: undefined, body: () => walkableObject(gen, gen.int(7), () => gen.value(1)) },
    { path: 'users', body: () => `{"n":${gen.scalar()},"users":${gen.random() < 0.08 ? gen.array(1, 2) : walkableObject(gen, gen.int(6), () => gen.value(1))},"z":${gen.value(1)}}` },
    { path: 'g.*', body: () => `{"g":[${Array.from({ length: gen.int(3) }, () => walkableObject(gen, gen.int(4), () => gen.value(2))).join(',')}]}` }
  ]
  let failures = 0
  for (let k = 0; k < 360 && failures < 5; k++) {
    const shape = shapes[k % shapes.length]!
    let body: Buffer = Buffer.from(gen.ws() + shape.body() + gen.ws())
    const damaged = k % 3 === 2
    if (damaged) body = gen.mutate(body)
    const variant = VARIANTS[k % VARIANTS.length]!
    const reference = referenceJson(body, shape.path, {}, true)
    const difference = compare(body, reference, chunks => streamJson(chunks, { ...variant, path: shape.path, entries: true }), variant.batchSize,
      { seed: k, codes: !damaged, allowTwice: damaged })
    if (difference !== '') failures++
    t.equal(difference, '', `entries ${shape.path ?? '(top)'} body #${k} ${describe(body)}`)
  }
})

t.test('NDJSON: same items and the same failing line as the reference', async t => {
  const gen = new JsonGen(505, { newlines: false })
  let failures = 0
  for (let k = 0; k < 600 && failures < 5; k++) {
    const lines: string[] = []
    for (let l = gen.int(8); l > 0; l--) {
      const r = gen.random()
      lines.push(r < 0.15 ? '' : r < 0.25 ? gen.pick([' ', '\t', '  \r']) : gen.ws() + gen.value(1) + gen.ws())
    }
    let text = lines.map(line => line + gen.pick(['\n', '\r\n', '\n'])).join('')
    if (gen.random() < 0.3) text = text.replace(/\r?\n$/, '')
    let body: Buffer = Buffer.from(text)
    if (k % 2 === 1) body = gen.mutate(body)
    const batchSize = [1, 2, 1000][k % 3]!
    // Every other body with maxItemSize exactly its longest line: never refused, but the
    // splitter then checks lines one by one.
    const longest = Math.max(1, ...body.toString('latin1').split('\n').map(line => line.length))
    const maxItemSize = k % 4 < 2 ? longest : undefined
    const reference = referenceNdjson(body)
    const difference = compare(body, reference, chunks => streamNdjson(chunks, { batchSize, maxItemSize }), batchSize, { seed: k, codes: true, lines: true })
    if (difference !== '') failures++
    t.equal(difference, '', `body #${k} ${describe(body)}`)
    let buffered: Outcome
    let splitterError: (Error & { code: string, offset: number, line: number }) | undefined
    try {
      buffered = { items: parseNdjsonBody(body) }
    } catch (err) {
      splitterError = err as Error & { code: string, offset: number, line: number }
      buffered = { code: splitterError.code }
    }
    t.equal(buffered.code, reference.code, 'parseNdjsonBody rejects as the reference does')
    if (reference.items !== undefined) t.same(buffered.items, reference.items)
    // The small-body path's own line loop, on the body whole and cut in three.
    const [a, b] = [Math.min(3, body.length), Math.max(Math.min(3, body.length), body.length - 2)]
    for (const chunks of [[body], [body.subarray(0, a), body.subarray(a, b), body.subarray(b)]]) {
      let whole: Outcome
      try {
        whole = { items: parseNdjsonWhole(chunks, body.length, { protoAction: 'error', constructorAction: 'error' }, 1000) }
      } catch (err) {
        const coded = err as Error & { code: string, offset: number, line: number }
        whole = { code: coded.code }
        t.same([coded.offset, coded.line, coded.message], [splitterError?.offset, splitterError?.line, splitterError?.message], 'parseNdjsonWhole locates the fault as the splitter does')
      }
      t.equal(whole.code, reference.code, 'parseNdjsonWhole rejects as the reference does')
      if (reference.items !== undefined) t.same(whole.items, reference.items)
    }
  }
})

t.test('prototype poisoning in every spelling, under every action, equals the reference', async t => {
  const actions: PoisoningAction[] = ['error', 'remove', 'ignore']
  const bodies = [
    '[{"__proto__":{"x":1}}]',
    '[1,{"a":{"\\u005f_proto__":{"x":1}}},2]',
    '[{"\\u005F\\u005Fpr\\u006fto__":1}]',
    '[{"constructor":{"prototype":{"x":1}}}]',
    '[{"c\\u006fnstructor":{"prot\\u006ftype":1}}, 3]',
    '[{"constructor":{"prototype":null}}, {"constructor":1}, {"constructor":{"x":{"prototype":1}}}]',
    '[{"a":[{"b":{"__proto__":[]}}]}]',
    '{"__proto__":{"x":1}}',
    '[{"x":"\\"__proto__\\":1"}]',
    '[{"__proto__":{"constructor":{"prototype":1}}}]',
    '[{"constructor":{"prototype":{"__proto__":1}}}]'
  ]
  const pathBodies: Array<[string, string]> = [
    ['items', '{"__proto__":{"x":1},"items":[1,2]}'],
    ['items', '{"items":[1,2],"\\u005f_proto__":[]}'],
    ['items', '{"constructor":{"prototype":{}},"items":[1]}'],
    ['items', '{"constructor":{"x":{}},"items":[{"__proto__":1}]}'],
    ['data.rows', '{"data":{"__proto__":1,"rows":[1]}}'],
    ['__proto__', '{"__proto__":[1,2]}'],
    ['constructor.prototype', '{"constructor":{"prototype":[1]}}'],
    ['items', '{"__proto__":{"constructor":{"prototype":1}},"items":[1]}'],
    ['items', '{"constructor":{"prototype":{"__proto__":1}},"items":[1]}'],
    ['items', '{"constructor":{"__proto__":1},"items":[1]}'],
    ['data.*', '{"data":{"__proto__":[1],"a":[2]}}'],
    ['data.*', '{"data":{"a":[{"__proto__":1}],"constructor":{"x":1}}}'],
    ['*.rows', '[{"rows":[1],"__proto__":{}},{"rows":[{"constructor":{"prototype":1}}]}]']
  ]
  const entryBodies = [
    '{"a":1,"__proto__":{"x":1},"b":2}',
    '{"a":{"b":{"__proto__":1}},"c":[{"constructor":{"prototype":{}}}]}',
    '{"constructor":{"prototype":{}},"a":1}',
    '{"constructor":{"x":1},"\\u005f_proto__":2}'
  ]
  for (const text of entryBodies) {
    for (const protoAction of actions) {
      for (const constructorAction of actions) {
        const policy = { protoAction, constructorAction }
        const body = Buffer.from(text)
        const reference = referenceJson(body, undefined, policy, true)
        const difference = compare(body, reference, chunks => streamJson(chunks, { ...policy, entries: true, maxParseBytes: 8 }), 1000, { seed: 1, codes: true })
        t.equal(difference, '', `entries ${show(text)} proto=${protoAction} constructor=${constructorAction}`)
      }
    }
  }
  const cases: Array<[string | undefined, string]> = [...bodies.map((body): [undefined, string] => [undefined, body]), ...pathBodies]
  for (const [path, text] of cases) {
    for (const protoAction of actions) {
      for (const constructorAction of actions) {
        const policy = { protoAction, constructorAction }
        const body = Buffer.from(text)
        const reference = referenceJson(body, path, policy)
        const difference = compare(body, reference, chunks => streamJson(chunks, { ...policy, path, maxParseBytes: 8 }), 1000,
          { seed: 1, codes: true })
        t.equal(difference, '', `${show(text)} path=${path} proto=${protoAction} constructor=${constructorAction}`)
      }
    }
    const line = Buffer.from(text + '\n' + text)
    for (const protoAction of actions) {
      const reference = referenceNdjson(line, { protoAction })
      t.equal(compare(line, reference, chunks => streamNdjson(chunks, { protoAction }), 1000, { seed: 2, codes: true, lines: true }), '',
        `NDJSON ${show(text)} proto=${protoAction}`)
    }
  }
})
