// The path navigator's own rules, through the scanner, under every chunking: `*` segments (the
// items of every matching array, in document order) and objects streamed as entries.

import t from 'tap'
import { JsonArrayScanner } from '../../lib/core/array-scanner.js'
import { rejects, scan, yields } from '../helpers/scanner-cases.js'

const NOT_ARRAY = 'FST_NEXURE_PATH_NOT_ARRAY'
const NOT_OBJECT = 'FST_NEXURE_PATH_NOT_OBJECT'

t.test('a * over an object or an array: the items of every matching array, in document order', async t => {
  yields(t, '{"data":{"a":{"rows":[1,2]},"b":{"rows":[]},"c":{"rows":[3]}}}', [1, 2, 3], { path: 'data.*.rows' })
  yields(t, '{"data":[{"rows":[1]},{"x":0,"rows":[{"y":2}]}]}', [1, { y: 2 }], { path: 'data.*.rows' })
  yields(t, '[{"items":[1]},{"items":["é",2]}]', [1, 'é', 2], { path: '*.items' })
  yields(t, '{"groups":{"x":[1,2],"y":[[3]]},"n":1}', [1, 2, [3]], { path: 'groups.*' })
  yields(t, '[[1,2],[],[3]]', [1, 2, 3], { path: '*' })
  yields(t, '{"a":[[1],[2,3]],"b":[[4]]}', [1, 2, 3, 4], { path: '*.*' })
  yields(t, '{"b":[1],"2":[2],"a":[3]}', [1, 2, 3], { path: '*' })
})

t.test('a * that matches nothing yields no items', async t => {
  yields(t, '{"data":{}}', [], { path: 'data.*' })
  yields(t, '{"data":[]}', [], { path: 'data.*.rows' })
  yields(t, '[]', [], { path: '*' })
})

t.test('batches span the arrays a * matches: only the last one is short', async t => {
  const body = Buffer.from('{"a":[1,2,3],"b":[4,5],"c":[6,7,8,9]}')
  const result = scan([body], { path: '*', batchSize: 4 })
  t.same(result.items, [1, 2, 3, 4, 5, 6, 7, 8, 9])
  t.same(result.batches, [4, 4, 1])
})

t.test('a * match that is not the container the path steps into is a 400 naming the concrete path', async t => {
  rejects(t, '{"data":{"a":[1],"b":3}}', { code: NOT_ARRAY, offset: 21, message: /"data\.\*".*found a number at "data\.b"/ }, { path: 'data.*' })
  rejects(t, '{"data":[[1],[2],[3],4]}', { code: NOT_ARRAY, message: /found a number at "data\.3"/ }, { path: 'data.*' })
  rejects(t, '{"data":{"a":{"rows":[1]},"b":{"other":1}}}', { code: NOT_ARRAY, message: /the key "data\.b\.rows" is absent/ }, { path: 'data.*.rows' })
  rejects(t, '{"data":[{"rows":[1]},"x"]}', { code: NOT_ARRAY, message: /found a string at "data\.1"/ }, { path: 'data.*.rows' })
  rejects(t, '{"data":5}', { code: NOT_ARRAY, message: /found a number at "data"/ }, { path: 'data.*' })
  rejects(t, '"x"', { code: NOT_ARRAY, message: /the top-level value is a string/ }, { path: '*' })
  rejects(t, '{"a":[[1]]}', { code: NOT_ARRAY, message: /the array at "a\.0" has 1 element/ }, { path: '*.*.1' })
})

t.test('a key a * takes given twice is refused (JSON.parse would keep the last)', async t => {
  rejects(t, '{"data":{"a":[1],"a":[2]}}', { code: 'FST_NEXURE_INVALID_JSON', offset: 17, message: /path given twice: key "a"/ }, { path: 'data.*' })
  rejects(t, '{"data":{"a":[1],"\\u0061":[2]}}', { code: 'FST_NEXURE_INVALID_JSON', message: /given twice/ }, { path: 'data.*' })
  yields(t, '{"data":{"a":{"rows":[1],"x":1},"b":{"rows":[2],"x":2}}}', [1, 2], { path: 'data.*.rows' })
})

t.test('nesting inside a * match is bounded by maxDepth, counted from the top of the body', async t => {
  yields(t, '{"a":[[1]],"b":[[2]]}', [[1], [2]], { path: '*', maxDepth: 3 })
  rejects(t, '{"a":[[1]],"b":[[[2]]]}', { code: 'FST_NEXURE_INVALID_JSON', offset: 17, item: 1, message: /nested too deeply/ }, { path: '*', maxDepth: 3 })
})

t.test('entries: the object as [key, value] pairs, in document order, with or without a path', async t => {
  yields(t, '{"a":1,"b":{"c":[2]},"d":"é"}', [['a', 1], ['b', { c: [2] }], ['d', 'é']], { entries: true })
  yields(t, '{"meta":{"n":2},"users":{"u1":{"age":3},"u2":null}}', [['u1', { age: 3 }], ['u2', null]], { path: 'users', entries: true })
  yields(t, '{"b":1,"2":2,"a":3,"1":4}', [['b', 1], ['2', 2], ['a', 3], ['1', 4]], { entries: true })
  yields(t, '{}', [], { entries: true })
  yields(t, ' { "a\\u0062" : [ 1 , 2 ] } ', [['ab', [1, 2]]], { entries: true })
  yields(t, '{"g":[{"a":1},{"b":2}]}', [['a', 1], ['b', 2]], { path: 'g.*', entries: true })
  const result = scan([Buffer.from('{"a":1,"b":2,"c":3,"d":4,"e":5}')], { entries: true, batchSize: 2 })
  t.same(result.batches, [2, 2, 1], 'batches of batchSize pairs')
})

t.test('entries: a value that is not an object is a 400 FST_NEXURE_PATH_NOT_OBJECT', async t => {
  rejects(t, '[1,2]', { code: NOT_OBJECT, offset: 0, message: /at the top level: the top-level value is an array/ }, { entries: true })
  rejects(t, '{"users":[1]}', { code: NOT_OBJECT, offset: 9, message: /at path "users": found an array/ }, { path: 'users', entries: true })
  rejects(t, '{"x":{}}', { code: NOT_OBJECT, message: /the key is absent/ }, { path: 'users', entries: true })
  rejects(t, '{"g":[{"a":1},3]}', { code: NOT_OBJECT, message: /found a number at "g\.1"/ }, { path: 'g.*', entries: true })
})

t.test('entries: a key given twice is refused', async t => {
  rejects(t, '{"a":1,"b":2,"a":3}', { code: 'FST_NEXURE_INVALID_JSON', offset: 13, message: /given twice: key "a"/ }, { entries: true })
})

t.test('entries: values are bounded by maxItemSize and maxDepth, and faults name the entry', async t => {
  rejects(t, '{"a":1,"b":"0123456789"}', { code: 'FST_NEXURE_ITEM_TOO_LARGE', offset: 11, item: 1, message: /an entry value starting/ }, { entries: true, maxItemSize: 8 })
  yields(t, '{"a":1,"b":"012345"}', [['a', 1], ['b', '012345']], { entries: true, maxItemSize: 8 })
  rejects(t, '{"a":{"b":{}}}', { code: 'FST_NEXURE_INVALID_JSON', offset: 10, item: 0, message: /nested too deeply/ }, { entries: true, maxDepth: 2 })
  rejects(t, '{"a":1,"b":[1,}', { code: 'FST_NEXURE_INVALID_JSON', item: 1 }, { entries: true })
})

t.test('entries under the poisoning policy, as secure-json-parse treats the whole body', async t => {
  rejects(t, '{"a":1,"__proto__":{"x":1}}', { code: 'FST_NEXURE_FORBIDDEN_PROPERTY', offset: 7 }, { entries: true })
  yields(t, '{"a":1,"__proto__":{"x":1},"b":2}', [['a', 1], ['b', 2]], { entries: true, protoAction: 'remove' })
  yields(t, '{"__proto__":{"x":1}}', [['__proto__', { x: 1 }]], { entries: true, protoAction: 'ignore' })
  rejects(t, '{"a":{"b":{"__proto__":1}}}', { code: 'FST_NEXURE_FORBIDDEN_PROPERTY', item: 0 }, { entries: true })
  const removed = scan([Buffer.from('{"a":{"b":{"__proto__":1}}}')], { entries: true, protoAction: 'remove' })
  t.same(removed.items, [['a', { b: {} }]], 'a poisoned key inside a value is removed from it')
  rejects(t, '{"constructor":{"prototype":{}}}', { code: 'FST_NEXURE_FORBIDDEN_PROPERTY' }, { entries: true })
  yields(t, '{"constructor":{"prototype":{}},"a":1}', [['a', 1]], { entries: true, constructorAction: 'remove' })
  yields(t, '{"constructor":{"x":1}}', [['constructor', { x: 1 }]], { entries: true })
  rejects(t, '{"constructor":{"prototype":1}}', { code: 'FST_NEXURE_FORBIDDEN_PROPERTY' }, { path: 'constructor', entries: true })
  rejects(t, '{"constructor":{"a":1,"prototype":1}}', { code: NOT_OBJECT, message: /removed by constructorAction/ }, { path: 'constructor', entries: true, constructorAction: 'remove' })
})

t.test('a * under the poisoning policy', async t => {
  rejects(t, '{"data":{"__proto__":[1]}}', { code: 'FST_NEXURE_FORBIDDEN_PROPERTY' }, { path: 'data.*' })
  yields(t, '{"data":{"__proto__":[1],"a":[2]}}', [2], { path: 'data.*', protoAction: 'remove' })
  yields(t, '{"data":{"__proto__":[1],"a":[2]}}', [1, 2], { path: 'data.*', protoAction: 'ignore' })
  rejects(t, '{"data":[[{"__proto__":1}]]}', { code: 'FST_NEXURE_FORBIDDEN_PROPERTY', item: 0 }, { path: 'data.*' })
})

t.test('the last batch of entries goes out when the object ends, not at the end of the body', async t => {
  const pairs: unknown[][] = []
  const scanner = new JsonArrayScanner({ path: 'users', entries: true, batchSize: 10 }, batch => { pairs.push(batch) })
  scanner.write(Buffer.from('{"users":{"a":1,"b":2},"tail":['))
  t.same(pairs, [[['a', 1], ['b', 2]]], 'handed out before the rest of the body arrives')
  scanner.write(Buffer.from('1,2]}'))
  scanner.end()
  t.equal(pairs.length, 1)
})

t.test('the entries option is checked by the one option checker', async t => {
  t.throws(() => new JsonArrayScanner({ entries: 'yes' as never }, () => {}), { code: 'FST_NEXURE_INVALID_OPTION', message: 'Invalid nexure option entries: expected a boolean, got "yes"' })
  t.throws(() => new JsonArrayScanner({ path: 'a..*' }, () => {}), { code: 'FST_NEXURE_INVALID_OPTION', message: /path: Invalid path "a\.\.\*": empty segment/ })
})
