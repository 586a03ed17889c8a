import t from 'tap'
import { JsonArrayScanner } from '../../lib/core/array-scanner.js'
import type { JsonScannerOptions } from '../../lib/core/array-scanner.js'
import { BufferPool } from '../../lib/core/buffer-pool.js'
import { depthFault, depthFaultInBytes, nestedDeeperThan } from '../../lib/core/depth.js'
import { parseJsonBody, parseNdjsonBody } from '../../lib/core/whole-body.js'
import { NdjsonSplitter } from '../../lib/core/ndjson-splitter.js'
import type { NdjsonSplitterOptions } from '../../lib/core/ndjson-splitter.js'
import { chunkings, collect } from '../helpers/chunking.js'
import type { Collected } from '../helpers/chunking.js'

// maxDepth counts levels of arrays and objects from the top of the body: the streamed array is
// one, an object element a second. The first bracket past the bound is refused, with its byte
// offset and the element index (or line), under every chunking.

const nest = (depth: number, inner = '1'): string => '['.repeat(depth) + inner + ']'.repeat(depth)

function scan (body: string, options: JsonScannerOptions): Collected[] {
  const pool = new BufferPool({ slabSize: 16 })
  const results = chunkings(Buffer.from(body), { byteByByteUpTo: 256 }).map(({ chunks }) =>
    collect(onItems => new JsonArrayScanner({ pool, ...options }, onItems), chunks))
  if (pool.stats.inUse !== 0) throw new Error('a pooled buffer was not released')
  return results
}

function split (body: string, options: NdjsonSplitterOptions): Collected[] {
  return chunkings(Buffer.from(body), { byteByByteUpTo: 256 }).map(({ chunks }) =>
    collect(onItems => new NdjsonSplitter(options, onItems), chunks))
}

t.test('the array scanner takes exactly maxDepth levels and refuses one more', async t => {
  for (const result of scan(`[1,${nest(3)}]`, { maxDepth: 4 })) t.same(result.items, [1, [[[1]]]])
  for (const result of scan(`[1,${nest(4)}]`, { maxDepth: 4, batchSize: 1 })) {
    t.same(result.items, [1], 'the earlier element was handed out')
    t.match(result.error, { code: 'FST_NEXURE_INVALID_JSON', statusCode: 400, offset: 6, item: 1 })
    t.match(result.error?.message, /nested too deeply: more than 4 levels/)
  }
})

t.test('objects count as levels, and so do the containers on the path', async t => {
  const body = '{"meta":{"a":{"b":1}},"items":[{"x":{"y":2}}]}'
  for (const result of scan(body, { path: 'items', maxDepth: 4 })) t.same(result.items, [{ x: { y: 2 } }])
  for (const result of scan(body, { path: 'items', maxDepth: 3 })) {
    t.match(result.error, { code: 'FST_NEXURE_INVALID_JSON', offset: body.indexOf('{"y"'), item: 0 })
  }
  // Off the path, the sibling "meta" is three levels deep.
  for (const result of scan(body, { path: 'items', maxDepth: 2 })) {
    t.match(result.error, { code: 'FST_NEXURE_INVALID_JSON', offset: body.indexOf('{"b"') })
  }
  // A top-level value that is not an array is one item, with the same bound.
  for (const result of scan('{"a":{"b":{}}}', { maxDepth: 2 })) {
    t.match(result.error, { code: 'FST_NEXURE_INVALID_JSON', offset: 10 })
  }
})

t.test('brackets inside strings are not levels', async t => {
  const body = `["${'['.repeat(50)}", {"k": "${'{'.repeat(50)}"}]`
  for (const result of scan(body, { maxDepth: 2 })) t.equal(result.items.length, 2)
})

t.test('a million levels cost one pass, not a parse', async t => {
  const deep = `[${nest(1_000_000)}]`
  const [whole] = scan(deep, { maxDepth: 1000 }).slice(0, 1)
  t.match(whole?.error, { code: 'FST_NEXURE_INVALID_JSON', offset: 1000, item: 0 })
  t.throws(() => parseJsonBody(Buffer.from(deep)), { code: 'FST_NEXURE_INVALID_JSON', offset: 1000, item: 0 })
  t.same(parseJsonBody(Buffer.from(nest(1000, '0'))), JSON.parse(nest(1000, '0')), 'the default takes 1000 levels')
})

t.test('NDJSON: each line is bounded on its own, located by line and offset', async t => {
  const body = `${nest(3)}\n${nest(3)}\r\n"${'['.repeat(20)}"\n${nest(4)}\n5\n`
  for (const result of split(body, { maxDepth: 3, batchSize: 1 })) {
    t.same(result.items, [[[[1]]], [[[1]]], '['.repeat(20)])
    t.match(result.error, { code: 'FST_NEXURE_INVALID_JSON', line: 4, offset: body.indexOf(nest(4)) + 3 })
    t.match(result.error?.message, /nested too deeply: more than 3 levels/)
  }
  t.throws(() => parseNdjsonBody(Buffer.from(body), { maxDepth: 3 }), { code: 'FST_NEXURE_INVALID_JSON', line: 4 })
})

t.test('NDJSON: a line ending in \\r\\r\\n loses one \\r, as JSON.parse of the line would see it', async t => {
  for (const result of split('1\r\r\n2\r\n', {})) t.same(result.items, [1, 2])
  const body = 'x\r\r\n'
  for (const result of split(body, {})) t.match(result.error, { code: 'FST_NEXURE_INVALID_JSON', line: 1, offset: 0 })
})

t.test('depthFault: the index of the first bracket past the bound', async t => {
  t.equal(depthFault('[[[]]]', 0, 6, 3), -1)
  t.equal(depthFault('[[[[]]]]', 0, 8, 3), 3)
  t.equal(depthFault('["[[[[", [[]]]', 0, 14, 3), -1)
  t.equal(depthFault('["\\"[[[[", [[[]]]]', 0, 18, 3), 13, 'an escaped quote does not end the string')
  t.equal(depthFault('[[[[', 0, 4, 4), -1, 'a text no longer than the bound is not read')
})

t.test('depthFaultInBytes: the same answer as depthFault, as a byte offset', async t => {
  const texts = ['[[[]]]', '[[[[]]]]', '["[[[[", [[]]]', '["\\"[[[[", [[[]]]]', '{"é":[[["ü"]]]}', '["😀", [[[1]]]]', '[[[[']
  for (const text of texts) {
    const bytes = Buffer.from(text)
    const at = depthFault(text, 0, text.length, 3)
    const expected = at === -1 ? -1 : Buffer.byteLength(text.slice(0, at))
    t.equal(depthFaultInBytes(bytes, 0, bytes.length, 3), expected, text)
  }
})

t.test('maxDepth must be a positive integer', async t => {
  t.throws(() => new JsonArrayScanner({ maxDepth: 0 }, () => {}), { code: 'FST_NEXURE_INVALID_OPTION' })
  t.throws(() => new NdjsonSplitter({ maxDepth: 1.5 }, () => {}), { code: 'FST_NEXURE_INVALID_OPTION' })
})

t.test('nestedDeeperThan counts levels of the parsed value', async t => {
  t.equal(nestedDeeperThan(1, 1), false, 'a scalar has no level')
  t.equal(nestedDeeperThan([], 1), false)
  t.equal(nestedDeeperThan([[]], 1), true)
  t.equal(nestedDeeperThan({ a: { b: [1] } }, 3), false)
  t.equal(nestedDeeperThan({ a: { b: [1] } }, 2), true)
  t.equal(nestedDeeperThan([1, 'x', null, { a: 1 }, [[2]]], 3), false, 'the deepest branch counts, not the first')
  t.equal(nestedDeeperThan(JSON.parse(nest(100_000)), 99_999), true, 'no recursion: any depth is safe')
  t.equal(nestedDeeperThan(JSON.parse('{"__proto__":[[1]]}'), 2), true, 'an own __proto__ key is walked like any key')
  // Up to 4096 levels the walk recurses, beyond it it keeps its own stacks: both count alike.
  for (const maxDepth of [4095, 4096, 4097, 5000]) {
    const objects = JSON.parse('{"a":'.repeat(maxDepth - 1) + '[1]' + '}'.repeat(maxDepth - 1)) as unknown
    t.equal(nestedDeeperThan(JSON.parse(nest(maxDepth)), maxDepth), false, `${maxDepth} levels of arrays fit maxDepth ${maxDepth}`)
    t.equal(nestedDeeperThan(JSON.parse(nest(maxDepth + 1)), maxDepth), true, `${maxDepth + 1} levels of arrays do not`)
    t.equal(nestedDeeperThan(objects, maxDepth), false, `${maxDepth} levels of objects fit`)
    t.equal(nestedDeeperThan({ wrap: objects }, maxDepth), true, 'one more object around them does not')
  }
})

t.test('whole bodies: plain JSON.parse where nothing can be poisoned, the policy where something can', async t => {
  const rows = Buffer.from(JSON.stringify([{ id: 1, tags: ['a'] }, { id: 2, tags: [] }]))
  t.same(parseJsonBody(rows), JSON.parse(rows.toString()), 'a clean body parses as JSON.parse parses it')
  t.same(parseJsonBody(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), rows])), JSON.parse(rows.toString()), 'a BOM is skipped, as secure-json-parse skips it')
  t.throws(() => parseJsonBody(Buffer.from('[{"__proto__":{"x":1}}]')), { code: 'FST_NEXURE_FORBIDDEN_PROPERTY' }, '__proto__ is refused')
  t.throws(() => parseJsonBody(Buffer.from('[{"\\u005f_proto__":{"x":1}}]')), { code: 'FST_NEXURE_FORBIDDEN_PROPERTY' }, 'so is __proto__ spelled with an escape')
  t.throws(() => parseJsonBody(Buffer.from('{"constructor":{"prototype":{"x":1}}}')), { code: 'FST_NEXURE_FORBIDDEN_PROPERTY' }, 'and constructor.prototype')
  t.same(parseJsonBody(Buffer.from('[{"__proto__":{"x":1}}]'), { protoAction: 'remove' }), [{}], "'remove' removes it")
  const ignored = parseJsonBody(Buffer.from('[{"__proto__":{"x":1}}]'), { protoAction: 'ignore', constructorAction: 'ignore' }) as Array<Record<string, unknown>>
  t.same(Object.getOwnPropertyDescriptor(ignored[0], '__proto__')?.value, { x: 1 }, "'ignore' keeps it as an own key, as JSON.parse does")
})

t.test('whole bodies: the same answer whichever way their depth is checked', async t => {
  // Padded with whitespace so that each body is long enough to be checked at all. A body is
  // checked on its parsed value, except where a poisoned key is removed (then on its bytes
  // first): both must answer as the array scanner answers, small and large.
  const pad = (text: string, size: number): Buffer => Buffer.from(text + ' '.repeat(Math.max(0, size - text.length)))
  for (const size of [4096, 1024 * 1024]) {
    const fits = `[1,${nest(9)}]`
    const deep = `[1,${nest(10)}]`
    t.same(parseJsonBody(pad(fits, size), { maxDepth: 10 }), JSON.parse(fits), `${size} bytes: maxDepth levels pass`)
    t.throws(() => parseJsonBody(pad(deep, size), { maxDepth: 10 }), { code: 'FST_NEXURE_INVALID_JSON', offset: 12, item: 1, message: /nested too deeply: more than 10 levels/ }, `${size} bytes: one more is refused where it is`)
    const poisoned = `[{"__proto__":${nest(20)}}]`
    t.throws(() => parseJsonBody(pad(poisoned, size), { maxDepth: 10, protoAction: 'remove' }), { code: 'FST_NEXURE_INVALID_JSON' }, `${size} bytes: a deep value inside a removed key is still refused`)
    // Two faults: the one the array scanner meets first is the one reported, however it is checked.
    for (const body of [poisoned, `[{"__proto__":1},${nest(20)}]`]) {
      const [reference] = scan(body, { maxDepth: 10 })
      t.ok(reference?.error, 'the scanner refuses it')
      t.throws(() => parseJsonBody(pad(body, size), { maxDepth: 10 }), { code: reference?.error?.code, offset: reference?.error?.offset }, `${size} bytes: ${body.slice(0, 16)}... fails as the scanner fails`)
    }
  }
  t.same(parseJsonBody(Buffer.from(nest(5)), { maxDepth: 5 }), JSON.parse(nest(5)), 'a body too short to be too deep is not checked')
  t.throws(() => parseJsonBody(Buffer.from('['.repeat(8)), { maxDepth: 5 }), { code: 'FST_NEXURE_INVALID_JSON', offset: 5 }, 'but a short malformed one is located as the scanner locates it')
})
