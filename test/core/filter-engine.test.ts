// FilterEngine: the outermost values a filter selects, anywhere in a JSON body, under every
// chunking: the same items as a walk of secure-json-parse's whole-body result, exactly the
// bodies it rejects rejected, each fault at the same place whatever the chunking, and the
// limits (maxItemSize, maxDepth) and the poisoning policy applied inside and around the selection.

import t from 'tap'
import fc from 'fast-check'
import { isDeepStrictEqual } from 'node:util'
import { FilterEngine } from '../../lib/core/filter-engine.js'
import type { FilterEngineOptions, PathFilter, PoisoningAction } from '../../lib/core/engine-options.js'
import { BufferPool } from '../../lib/core/buffer-pool.js'
import { chunkings, collect, show, splitAt } from '../helpers/chunking.js'
import type { Collected } from '../helpers/chunking.js'
import { FilterGen, referenceFilter } from '../helpers/filter-reference.js'
import type { Outcome } from '../helpers/reference.js'

const pool = new BufferPool({ slabSize: 32 })

function run (chunks: readonly Uint8Array[], options: FilterEngineOptions): Collected {
  return collect(onItems => new FilterEngine({ pool, ...options }, onItems), chunks)
}

function runText (text: string, options: FilterEngineOptions): Collected {
  return run([Buffer.from(text)], options)
}

/** The first difference between the engine under every chunking and the reference, or ''. */
function compare (body: Buffer, reference: Outcome, options: FilterEngineOptions, seed: number): string {
  let first: Collected['error']
  const batchSize = options.batchSize ?? 1000
  for (const { name, chunks } of chunkings(body, { seed, randomSplits: 4, byteByByteUpTo: 600 })) {
    const result = run(chunks, options)
    if (pool.stats.inUse !== 0) return `${name}: ${pool.stats.inUse} pooled buffers in use`
    if (reference.code === undefined) {
      if (result.error !== undefined) return `${name}: rejected (${result.error.code}: ${result.error.message}) but the reference accepts`
      if (!isDeepStrictEqual(result.items, reference.items)) return `${name}: items ${show(result.items, 300)} vs ${show(reference.items, 300)}`
      if (result.batches.some((size, k) => size === 0 || size > batchSize || (k < result.batches.length - 1 && size !== batchSize))) {
        return `${name}: batches ${result.batches.join(',')} for batchSize ${batchSize}`
      }
    } else {
      const error = result.error
      if (error === undefined) return `${name}: accepted ${show(result.items, 300)} but the reference rejects (${reference.code})`
      if (error.code !== 'FST_NEXURE_EMPTY_BODY' && (typeof error.offset !== 'number' || !/at byte offset \d+/.test(error.message))) {
        return `${name}: error without a location: ${error.message}`
      }
      if (reference.code === 'FST_NEXURE_FORBIDDEN_PROPERTY' && error.code !== reference.code && error.code !== 'FST_NEXURE_INVALID_JSON') {
        return `${name}: ${error.code} but the reference says ${reference.code}`
      }
      if (first === undefined) first = error
      else if (error.code !== first.code || error.offset !== first.offset || error.message !== first.message) {
        return `${name}: "${error.message}" differs from "${first.message}"`
      }
    }
  }
  return ''
}

const FILTERS: Array<[string, PathFilter]> = [
  ['top-level elements /^\\d+$/', /^\d+$/],
  ['values under a k1_ key anywhere', /(^|\.)k1_[^.]*$/],
  ['elements of nested arrays /\\.\\d+$/', /\.\d+$/],
  ['the top-level value /^$/', /^$/],
  ['depth 2, a function', path => path.length === 2],
  ['even indices, a function', path => typeof path[path.length - 1] === 'number' && (path[path.length - 1] as number) % 2 === 0],
  ['nothing', () => false],
  ['a global RegExp (its flag is dropped)', /k0_/g]
]

t.test('generated bodies: the reference\'s items under every chunking, filter and batch size', async t => {
  const gen = new FilterGen(1701, { maxDepth: 4 })
  let failures = 0
  for (let k = 0; k < 240 && failures < 5; k++) {
    const body = Buffer.from(gen.ws() + (k % 3 === 0 ? gen.object(1) : gen.array(1, gen.int(7))) + gen.ws())
    const [label, filter] = FILTERS[k % FILTERS.length]!
    const options = { filter, batchSize: [1, 3, 1000][k % 3]! }
    const reference = referenceFilter(body, filter)
    t.equal(reference.code, undefined, 'the generator writes valid JSON')
    const difference = compare(body, reference, options, k)
    if (difference !== '') failures++
    t.equal(difference, '', `${label}: #${k} ${show(body, 200)}`)
  }
})

t.test('damaged bodies: rejected exactly when the reference rejects them, at one place', async t => {
  const gen = new FilterGen(1702, { maxDepth: 3 })
  let rejected = 0
  let failures = 0
  for (let k = 0; k < 400 && failures < 5; k++) {
    const body = gen.mutate(Buffer.from(k % 2 === 0 ? gen.object(1) : gen.array(1, 1 + gen.int(5))))
    const [label, filter] = FILTERS[k % FILTERS.length]!
    const reference = referenceFilter(body, filter)
    if (reference.code !== undefined) rejected++
    const difference = compare(body, reference, { filter, batchSize: 2 }, k)
    if (difference !== '') failures++
    t.equal(difference, '', `${label}: #${k} ${show(body, 200)}`)
  }
  t.ok(rejected > 150 && rejected < 400, `a fair mix of rejected (${rejected}) and accepted bodies`)
})

t.test('the poisoning policy, as secure-json-parse applies it to the whole body', async t => {
  const actions: PoisoningAction[] = ['error', 'remove', 'ignore']
  const gen = new FilterGen(1703, { maxDepth: 4, special: 0.3 })
  let failures = 0
  let forbidden = 0
  for (let k = 0; k < 270 && failures < 5; k++) {
    const policy = { protoAction: actions[k % 3]!, constructorAction: actions[Math.floor(k / 3) % 3]! }
    const body = Buffer.from(gen.object(1))
    const [label, filter] = FILTERS[k % FILTERS.length]!
    const reference = referenceFilter(body, filter, policy)
    if (reference.code !== undefined) forbidden++
    const difference = compare(body, reference, { filter, ...policy }, k)
    if (difference !== '') failures++
    t.equal(difference, '', `${label}, ${policy.protoAction}/${policy.constructorAction}: #${k} ${show(body, 200)}`)
  }
  t.ok(forbidden > 20, `bodies refused by the policy (${forbidden}) among them`)
})

t.test('property: any JSON value, any indentation, any cuts: the reference items (fast-check)', async t => {
  // JSON.stringify writes an object's keys in the order JavaScript keeps them, so here a walk of
  // the parsed value is the document order even with integer-like keys.
  fc.assert(fc.property(
    fc.jsonValue({ maxDepth: 4 }), fc.constantFrom(0, 1, '\t'), fc.array(fc.nat(), { maxLength: 12 }), fc.nat(FILTERS.length - 1),
    fc.constantFrom<PoisoningAction>('error', 'remove', 'ignore'), fc.integer({ min: 1, max: 5 }),
    (value, indent, cuts, f, action, batchSize) => {
      const body = Buffer.from(JSON.stringify(value, null, indent))
      const filter = FILTERS[f]![1]
      const policy = { protoAction: action, constructorAction: action }
      const reference = referenceFilter(body, filter, policy)
      const result = run(splitAt(body, cuts.map(cut => cut % (body.length + 1))), { filter, batchSize, ...policy })
      if (reference.code !== undefined) return result.error?.code === reference.code
      return result.error === undefined && isDeepStrictEqual(result.items, reference.items) && pool.stats.inUse === 0
    }
  ), { numRuns: 250, seed: 1704 })
  t.pass('250 runs')
})

t.test('hand-picked poisoning cases', async t => {
  const cases: Array<[string, string, PathFilter, PoisoningAction, PoisoningAction]> = [
    ['__proto__ inside a selected value', '{"rows":[{"a":1,"__proto__":{"x":1}}]}', /^rows\.\d+$/, 'error', 'error'],
    ['__proto__ around the selection', '{"__proto__":{"rows":[1]},"rows":[2]}', /^rows\.\d+$/, 'error', 'error'],
    ['__proto__ removed around the selection: its items go too', '{"__proto__":{"rows":[1]},"rows":[2]}', /(^|\.)rows\.\d+$/, 'remove', 'error'],
    ['__proto__ removed inside a selected value', '[{"__proto__":{"y":2},"b":1}]', /^\d+$/, 'remove', 'error'],
    ['__proto__ kept as an own property', '[{"__proto__":{"y":2}}]', /^\d+$/, 'ignore', 'ignore'],
    ['a selected value under __proto__ kept', '{"__proto__":[7]}', /^__proto__$/, 'ignore', 'ignore'],
    ['constructor.prototype around the selection', '{"constructor":{"a":[1],"prototype":{}}}', /\.\d+$/, 'error', 'error'],
    ['constructor.prototype removed: what it held goes', '{"b":[0],"constructor":{"a":[1],"prototype":{}},"c":[2]}', /\.\d+$/, 'error', 'remove'],
    ['constructor removed hides a __proto__ error', '{"constructor":{"__proto__":1,"prototype":{}},"a":[3]}', /\.\d+$/, 'error', 'remove'],
    ['constructor kept: its __proto__ error shows', '{"constructor":{"__proto__":1},"a":[3]}', /\.\d+$/, 'error', 'remove'],
    ['a selected constructor object with a prototype', '{"constructor":{"prototype":1},"x":2}', /^(constructor|x)$/, 'error', 'remove'],
    ['a selected constructor array', '{"constructor":[1]}', /^constructor$/, 'error', 'error'],
    ['escaped __proto__', '{"a":[{"\\u005f_proto__":1}]}', /^a\.\d+$/, 'error', 'error']
  ]
  for (const [label, text, filter, protoAction, constructorAction] of cases) {
    const body = Buffer.from(text)
    const reference = referenceFilter(body, filter, { protoAction, constructorAction })
    t.equal(compare(body, reference, { filter, protoAction, constructorAction }, 1), '', `${label} (${reference.code ?? 'accepted'})`)
    const result = runText(text, { filter, protoAction, constructorAction })
    if (reference.code === undefined) {
      for (const item of result.items) {
        if (item !== null && typeof item === 'object') t.equal(Object.getPrototypeOf(item), Array.isArray(item) ? Array.prototype : Object.prototype, `${label}: no prototype set`)
      }
    } else {
      t.equal(result.error?.code, reference.code, `${label}: ${result.error?.message}`)
    }
  }
})

t.test('outermost only: nothing inside a selected value is tested', async t => {
  const seen: string[] = []
  const result = runText('{"a":{"b":{"c":1}},"d":[{"b":2}]}', { filter: path => { seen.push(path.join('.')); return path[path.length - 1] === 'b' } })
  t.same(result.items, [{ c: 1 }, 2])
  t.same(seen, ['', 'a', 'a.b', 'd', 'd.0', 'd.0.b'], 'every value outside the selection, once, in document order')
})

t.test('a key given twice around the selection is refused; inside a selected value JSON.parse keeps the last', async t => {
  const twice = runText('{"a":[1],"b":2,"a":[3]}', { filter: /^a\.\d+$/ })
  t.equal(twice.error?.code, 'FST_NEXURE_INVALID_JSON')
  t.match(twice.error?.message, /key given twice: "a" appears again .* at byte offset 15/)
  t.same(runText('[{"a":1,"a":2}]', { filter: /^\d+$/ }).items, [{ a: 2 }])
})

t.test('maxItemSize: a selected value past it is a 413 naming the item and its start, whatever the chunking', async t => {
  const body = Buffer.from('{"skip":"' + 'x'.repeat(30) + '","rows":[{"a":1},{"b":"' + 'y'.repeat(40) + '"},{"c":3}]}')
  const reference: Outcome = { code: 'FST_NEXURE_ITEM_TOO_LARGE' }
  t.equal(compare(body, reference, { filter: /^rows\.\d+$/, maxItemSize: 40 }, 3), '')
  const result = run([body], { filter: /^rows\.\d+$/, maxItemSize: 40 })
  t.equal(result.error?.code, 'FST_NEXURE_ITEM_TOO_LARGE')
  t.equal(result.error?.item, 1)
  t.equal(result.error?.offset, body.indexOf('{"b"'))
  t.match(result.error?.message, /the selected value starting at byte offset \d+ \(item 1\) exceeds maxItemSize of 40 bytes/)
  t.same(run([body], { filter: /^rows\.\d+$/, maxItemSize: 50 }).items.length, 3, 'under the limit it passes')
  const long = run([body], { filter: /^rows\.\d+$/, maxItemSize: 20 })
  t.match(long.error?.message, /a string starting at byte offset 8 /, 'a string outside the selection is bounded too')
  const open = run([Buffer.from('[{"a":"' + 'z'.repeat(100)), Buffer.from('z'.repeat(100))], { filter: /^\d+$/, maxItemSize: 150 })
  t.equal(open.error?.code, 'FST_NEXURE_ITEM_TOO_LARGE', 'refused before the value ends')
  t.equal(open.thrownAt, 1)
})

t.test('maxDepth: nesting inside and outside the selection, refused at the bracket', async t => {
  const deepInside = '{"rows":[' + '['.repeat(6) + ']'.repeat(6) + ']}'
  const inside = runText(deepInside, { filter: /^rows\.\d+$/, maxDepth: 5 })
  t.equal(inside.error?.code, 'FST_NEXURE_INVALID_JSON')
  t.equal(inside.error?.offset, 12, "the bracket that opens level 6")
  t.equal(inside.error?.item, 0)
  t.match(inside.error?.message, /more than 5 levels .* at byte offset 12 \(item 0\)/)
  const outside = runText('[' + '['.repeat(9) + ']'.repeat(9) + ']', { filter: () => false, maxDepth: 8 })
  t.equal(outside.error?.offset, 8)
  t.equal(outside.error?.item, undefined)
  t.same(runText(deepInside, { filter: /^rows\.\d+$/, maxDepth: 8 }).items.length, 1)
  const million = '['.repeat(1e6)
  const started = performance.now()
  t.equal(runText(million, { filter: /^$/ }).error?.offset, 1000, 'a million brackets: refused at the first one too deep')
  t.ok(performance.now() - started < 2000)
})

t.test('faults are located: structure, strings, numbers, literals, the end', async t => {
  const cases: Array<[string, number, RegExp]> = [
    ['[1,,2]', 3, /Unexpected ',' \(empty element\)/],
    ['{"a" 1}', 5, /Expected ':'/],
    ['{"a":1,}', 7, /trailing comma/],
    ['["a\\x"]', 4, /Bad escaped character/],
    ['["a\u0001"]', 3, /Bad control character/],
    ['[01]', 2, /in a number/],
    ['[1.]', 3, /in a number/],
    ['[tru]', 4, /in the literal 'true'/],
    ['[truex]', 5, /in the literal 'true'/],
    ['[1] x', 4, /after the JSON value/],
    ['{"a":[1,2', 9, /Unexpected end of JSON input/],
    ['["abc', 5, /Unexpected end/]
  ]
  for (const [text, offset, message] of cases) {
    for (const { name, chunks } of chunkings(Buffer.from(text))) {
      const result = run(chunks, { filter: /^\d+$/ })
      if (result.error?.offset !== offset || !message.test(result.error.message)) {
        t.fail(`${show(text)} ${name}: ${result.error?.message ?? 'accepted'}`)
      }
    }
    t.pass(`${show(text)} at ${offset}`)
  }
  t.equal(runText('  ', { filter: /x/ }).error?.code, 'FST_NEXURE_EMPTY_BODY')
  t.same(run([Buffer.from([0xef]), Buffer.from([0xbb, 0xbf]), Buffer.from('[1]')], { filter: /^\d+$/ }).items, [1], 'a BOM split across chunks')
})

t.test('options are checked', async t => {
  t.throws(() => new FilterEngine({ filter: 'rows' as unknown as RegExp }, () => {}), /filter: expected a RegExp or a function \(path\) => boolean, got "rows"/)
  t.throws(() => new FilterEngine({ filter: /x/, path: 'a' } as FilterEngineOptions, () => {}), /unknown option/)
})
