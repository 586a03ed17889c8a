import t from 'tap'
import { JsonArrayScanner } from '../../lib/core/array-scanner.js'
import { BufferPool } from '../../lib/core/buffer-pool.js'
import { parseJsonBody } from '../../lib/core/whole-body.js'
import { chunkings, splitAt } from '../helpers/chunking.js'
import type { Collected } from '../helpers/chunking.js'
import { rejects, scan, yields } from '../helpers/scanner-cases.js'

t.test('elements whose strings hold brackets, commas, quotes and backslashes', async t => {
  yields(t, String.raw`["[", "]", "{", "}", ",", "\"", "\\", "\\\"", "a\"],[{\"", {"k]":"}{"}]`,
    ['[', ']', '{', '}', ',', '"', '\\', '\\"', 'a"],[{"', { 'k]': '}{' }])
  yields(t, String.raw`["\\", "x\\\\", "\\\"\\"]`, ['\\', 'x\\\\', '\\"\\'])
  yields(t, String.raw`[{"a":"\"]"},["\\"],"\u0022"]`, [{ a: '"]' }, ['\\'], '"'])
})

t.test('numbers and literals split across chunks', async t => {
  yields(t, '[12345678901234,-1.5e-10,0,-0,1E+2,true,false,null]', [12345678901234, -1.5e-10, 0, -0, 100, true, false, null])
  rejects(t, '[1,tru]', { code: 'FST_NEXURE_INVALID_JSON', item: 1, offset: 6 })
  rejects(t, '[1,-]', { code: 'FST_NEXURE_INVALID_JSON', item: 1, offset: 4, message: /No number after minus sign at byte offset 4 \(item 1\)/ })
  rejects(t, '[01]', { code: 'FST_NEXURE_INVALID_JSON', item: 0 })
})

t.test('whitespace wherever JSON allows it, and nowhere else', async t => {
  yields(t, ' \t\r\n[ \n1 \t, \r\n{ "a" : [ 2 , 3 ] }\t]\n ', [1, { a: [2, 3] }])
  yields(t, '[ ]', [])
  yields(t, '[\n]', [])
  rejects(t, '[1,\u00a02]', { code: 'FST_NEXURE_INVALID_JSON', offset: 3, item: 1 })
  rejects(t, '[1\f]', { code: 'FST_NEXURE_INVALID_JSON', offset: 2 })
})

t.test('structure between elements is checked', async t => {
  rejects(t, '[1,,2]', { code: 'FST_NEXURE_INVALID_JSON', offset: 3, item: 1, message: /empty element/ })
  rejects(t, '[1,]', { code: 'FST_NEXURE_INVALID_JSON', offset: 3, item: 1, message: /trailing comma/ })
  rejects(t, '[,1]', { code: 'FST_NEXURE_INVALID_JSON', offset: 1, item: 0 })
  rejects(t, '[1 2]', { code: 'FST_NEXURE_INVALID_JSON', offset: 3, item: 1, message: /Expected ',' or ']'/ })
  rejects(t, '[1}', { code: 'FST_NEXURE_INVALID_JSON', offset: 2 })
  rejects(t, '[{"a":1]]', { code: 'FST_NEXURE_INVALID_JSON', item: 0 })
  rejects(t, '[1,2', { code: 'FST_NEXURE_INVALID_JSON', offset: 4, message: /Unexpected end of JSON input/ })
  rejects(t, '["abc', { code: 'FST_NEXURE_INVALID_JSON', offset: 5 })
  rejects(t, '[', { code: 'FST_NEXURE_INVALID_JSON', offset: 1 })
  rejects(t, ']', { code: 'FST_NEXURE_INVALID_JSON', offset: 0 })
})

t.test('nothing but whitespace after the array or top-level value', async t => {
  rejects(t, '[1] x', { code: 'FST_NEXURE_INVALID_JSON', offset: 4, message: /after the JSON value/ })
  rejects(t, '[1]]', { code: 'FST_NEXURE_INVALID_JSON', offset: 3 })
  rejects(t, '[1][2]', { code: 'FST_NEXURE_INVALID_JSON', offset: 3 })
  rejects(t, '[1] ,', { code: 'FST_NEXURE_INVALID_JSON', offset: 4 })
  rejects(t, '{"a":1}}', { code: 'FST_NEXURE_INVALID_JSON', offset: 7 })
  rejects(t, '12 34', { code: 'FST_NEXURE_INVALID_JSON', offset: 3 })
  rejects(t, '"a""b"', { code: 'FST_NEXURE_INVALID_JSON', offset: 3 })
})

t.test('top-level values other than arrays are one item', async t => {
  yields(t, '123', [123])
  yields(t, ' -1.5e3 ', [-1500])
  yields(t, '"a string, with [brackets]"', ['a string, with [brackets]'])
  yields(t, 'true', [true])
  yields(t, 'null', [null])
  yields(t, '{"a":[1,{"b":"]"}]}', [{ a: [1, { b: ']' }] }])
  rejects(t, '{"a":}', { code: 'FST_NEXURE_INVALID_JSON', offset: 5 })
  rejects(t, 'nul', { code: 'FST_NEXURE_INVALID_JSON' })
})

t.test('an empty body, or whitespace only, is FST_NEXURE_EMPTY_BODY', async t => {
  rejects(t, '', { code: 'FST_NEXURE_EMPTY_BODY' })
  rejects(t, ' \n\t\r ', { code: 'FST_NEXURE_EMPTY_BODY' })
  rejects(t, '\ufeff  ', { code: 'FST_NEXURE_EMPTY_BODY' })
})

t.test('a byte order mark is skipped at the start only', async t => {
  yields(t, '\ufeff[1,"é"]', [1, 'é'])
  yields(t, '\ufeff"x"', ['x'])
  rejects(t, Buffer.from([0xef, 0xbb, 0x5b, 0x31, 0x5d]), { code: 'FST_NEXURE_INVALID_JSON', offset: 0 })
  rejects(t, Buffer.from([0xef, 0xbb]), { code: 'FST_NEXURE_INVALID_JSON', offset: 0 })
  rejects(t, '[1,\ufeff2]', { code: 'FST_NEXURE_INVALID_JSON', offset: 3 })
  rejects(t, ' \ufeff[1]', { code: 'FST_NEXURE_INVALID_JSON', offset: 1 })
})

t.test('multi-byte and invalid UTF-8 decode as Buffer toString decodes them', async t => {
  yields(t, '["é€😀𝄞", {"中文": "\u2028"}]', ['é€😀𝄞', { 中文: '\u2028' }])
  const invalid = Buffer.concat([Buffer.from('["'), Buffer.from([0xff, 0xc3, 0x41, 0xe2, 0x82]), Buffer.from('", "'), Buffer.from([0xf0, 0x9f, 0x98]), Buffer.from('"]')])
  yields(t, invalid, JSON.parse(invalid.toString('utf8')))
  rejects(t, Buffer.from([0x5b, 0x31, 0x2c, 0xc3, 0xa9, 0x5d]), { code: 'FST_NEXURE_INVALID_JSON', offset: 3, item: 1 })
})

t.test('byte offsets count bytes, not characters, before the fault', async t => {
  const body = '["ééé😀", {"a": x}]'
  rejects(t, body, { code: 'FST_NEXURE_INVALID_JSON', offset: Buffer.from(body).indexOf('x'), item: 1, message: /Unexpected token 'x' at byte offset 21 \(item 1\)$/ })
  const control = '["€€", "ab\u0001"]'
  rejects(t, control, { code: 'FST_NEXURE_INVALID_JSON', offset: Buffer.from(control).indexOf(1), item: 1, message: /Bad control character/ })
  const batch = '[1, 2, 3, {"é": 1, "b": [1, 2, }]'
  rejects(t, batch, { code: 'FST_NEXURE_INVALID_JSON', offset: Buffer.from(batch).indexOf('}'), item: 3 }, { maxParseBytes: 1024 })
})

t.test('a fault inside a run of several elements is located by the scanner itself, message built once', async t => {
  // One parse call takes all of these; the scanner finds the element at fault and says where.
  const run = '[ "ü€", {"s": "a\\"b,]"}, [1, [2]] , tru ]'
  const message = `Invalid JSON body: Unexpected token ']' at byte offset ${Buffer.from(run).indexOf('tru') + 3} (item 3)`
  for (const options of [{ maxParseBytes: 1024 }, { maxParseBytes: 1, batchSize: 1 }]) {
    rejects(t, run, { code: 'FST_NEXURE_INVALID_JSON', item: 3, message: new RegExp(`^${message.replace(/[[\]().*+?^$\\|{}]/g, '\\$&')}$`) }, options)
  }
  const poisoned = '[1, 2, {"a": {"__proto__": {}}}, 4]'
  rejects(t, poisoned, { code: 'FST_NEXURE_FORBIDDEN_PROPERTY', offset: Buffer.from(poisoned).indexOf('{'), item: 2, message: /^Object contains forbidden prototype property: at byte offset 7 \(item 2\)$/ }, { maxParseBytes: 1024 })
})

t.test('with maxDepth raised, deep nesting inside one element does not blow the stack', async t => {
  const depth = 10_000
  const deep = '[' + '['.repeat(depth) + '"]"' + ']'.repeat(depth) + ',{"a":' + '{"a":'.repeat(depth) + '1' + '}'.repeat(depth + 1) + ']'
  const buf = Buffer.from(deep)
  for (const { name, chunks } of chunkings(buf, { randomSplits: 3, byteByByteUpTo: 0, twoWaySplitsUpTo: 0 })) {
    const result = scan(chunks, { maxDepth: Infinity })
    t.equal(result.error, undefined, name)
    t.equal(result.items.length, 2)
  }
  const result = scan(splitAt(buf, [5000, 10_001, 30_000]), { maxDepth: depth + 2 })
  let node = result.items[0]
  let levels = 0
  while (Array.isArray(node)) {
    node = node[0]
    levels++
  }
  t.equal(levels, depth, 'every level is there')
  t.equal(node, ']')
  const unbalanced = Buffer.from('[' + '['.repeat(depth) + ']'.repeat(depth - 1) + ']')
  t.equal(scan(splitAt(unbalanced, [7777])).error?.code, 'FST_NEXURE_INVALID_JSON', 'a missing bracket deep down is found')
})

t.test('paths select the array, wherever it is', async t => {
  yields(t, '{"items":[1,2,3]}', [1, 2, 3], { path: 'items' })
  yields(t, '{"meta":{"items":[9]},"items":[{"a":1}],"after":[1,{"x":"]"}]}', [{ a: 1 }], { path: 'items' })
  yields(t, '{"data":{"x":[1],"rows":["a","b"]},"data2":1}', ['a', 'b'], { path: 'data.rows' })
  yields(t, '{"a":[{"b":[1]},{"b":[2]}]}', [1], { path: 'a.0.b' })
  yields(t, '{"a":[{"b":[1]},{"b":[2]}]}', [2], { path: 'a.1.b' })
  yields(t, '[[1],[2,3]]', [2, 3], { path: '1' })
  rejects(t, '{"0":[5]}', { code: 'FST_NEXURE_PATH_NOT_ARRAY', message: /the top-level value is an object/ }, { path: '0' })
  rejects(t, '{"a":{"0":{"b":[1]}}}', { code: 'FST_NEXURE_PATH_NOT_ARRAY', message: /found an object at "a"/ }, { path: 'a.0.b' })
  yields(t, '{"it\\u0065ms":[1],"x":2}', [1], { path: 'items' })
  yields(t, '{"items":[]}', [], { path: 'items' })
  yields(t, '\ufeff { "items" : [ 1 ] } ', [1], { path: 'items' })
  yields(t, '[1,2]', [1, 2], { path: '' })
})

t.test('a path that is absent or not an array is FST_NEXURE_PATH_NOT_ARRAY, saying what was found', async t => {
  const code = 'FST_NEXURE_PATH_NOT_ARRAY'
  rejects(t, '{"items":5}', { code, offset: 9, message: /^Expected an array at path "items": found a number/ }, { path: 'items' })
  rejects(t, '{"items":{"a":[1]}}', { code, message: /found an object/ }, { path: 'items' })
  rejects(t, '{"items":"[1]"}', { code, message: /found a string/ }, { path: 'items' })
  rejects(t, '{"items":null}', { code, message: /found null/ }, { path: 'items' })
  rejects(t, '{"other":[1]}', { code, offset: 12, message: /the key is absent/ }, { path: 'items' })
  rejects(t, '{}', { code, message: /the key is absent/ }, { path: 'items' })
  rejects(t, '{"data":{"x":1}}', { code, message: /the key is absent/ }, { path: 'data.rows' })
  rejects(t, '{"x":1}', { code, message: /the key "data" is absent/ }, { path: 'data.rows' })
  rejects(t, '{"data":[1]}', { code, message: /found an array at "data"/ }, { path: 'data.rows' })
  rejects(t, '{"data":7}', { code, message: /found a number at "data"/ }, { path: 'data.rows' })
  rejects(t, '[1,2]', { code, offset: 0, message: /the top-level value is an array/ }, { path: 'items' })
  rejects(t, '"x"', { code, message: /the top-level value is a string/ }, { path: 'items' })
  rejects(t, '{"a":[{"b":[1]}]}', { code, message: /the array at "a" has 1 element/ }, { path: 'a.1.b' })
})

t.test('a key on the path given twice is refused (JSON.parse would keep the last)', async t => {
  rejects(t, '{"items":[1],"items":[2]}', { code: 'FST_NEXURE_INVALID_JSON', offset: 13, message: /cannot stream a path given twice/ }, { path: 'items' })
  rejects(t, '{"data":{"rows":[1]},"d\\u0061ta":{}}', { code: 'FST_NEXURE_INVALID_JSON', message: /path given twice/ }, { path: 'data.rows' })
  yields(t, '{"x":1,"x":2,"items":[1]}', [1], { path: 'items' })
})

t.test('values off the path are validated, bounded and dropped', async t => {
  rejects(t, '{"meta":{"a":},"items":[1]}', { code: 'FST_NEXURE_INVALID_JSON', offset: 13 }, { path: 'items' })
  rejects(t, '{"meta":[1,],"items":[1]}', { code: 'FST_NEXURE_INVALID_JSON' }, { path: 'items' })
  rejects(t, '{"items":[1],"z":tru}', { code: 'FST_NEXURE_INVALID_JSON' }, { path: 'items' })
  rejects(t, '{"items":[1] "z":1}', { code: 'FST_NEXURE_INVALID_JSON', offset: 13 }, { path: 'items' })
  rejects(t, '{"items":[1],}', { code: 'FST_NEXURE_INVALID_JSON', offset: 13, message: /trailing comma/ }, { path: 'items' })
  rejects(t, '{"meta":"' + 'x'.repeat(100) + '","items":[1]}', { code: 'FST_NEXURE_ITEM_TOO_LARGE', offset: 8 }, { path: 'items', maxItemSize: 50 })
  rejects(t, '{"meta":{"__proto__":1},"items":[1]}', { code: 'FST_NEXURE_FORBIDDEN_PROPERTY', offset: 8 }, { path: 'items' })
})

t.test('prototype poisoning follows secure-json-parse, inside elements and along the path', async t => {
  const forbidden = 'FST_NEXURE_FORBIDDEN_PROPERTY'
  rejects(t, '[1,{"a":{"__proto__":{}}}]', { code: forbidden, item: 1, offset: 3 })
  rejects(t, '[{"\\u005f_proto__":1}]', { code: forbidden, item: 0 })
  rejects(t, '[{"constructor":{"prototype":{}}}]', { code: forbidden, item: 0 })
  yields(t, '[{"constructor":{"prototype":{}}}]', [{}], { constructorAction: 'remove' })
  yields(t, '[{"__proto__":{"x":1},"a":1}]', [{ a: 1 }], { protoAction: 'remove' })
  const ignored = scan([Buffer.from('[{"__proto__":{"x":1}}]')], { protoAction: 'ignore' })
  t.ok(Object.hasOwn(ignored.items[0] as object, '__proto__'), 'ignore keeps the key as an own property')
  t.equal(({} as Record<string, unknown>).x, undefined, 'and Object.prototype is untouched')
  rejects(t, '{"__proto__":[],"items":[1]}', { code: forbidden, offset: 1, message: /key "__proto__"/ }, { path: 'items' })
  yields(t, '{"__proto__":[],"items":[1]}', [1], { path: 'items', protoAction: 'remove' })
  rejects(t, '{"__proto__":[1]}', { code: 'FST_NEXURE_PATH_NOT_ARRAY' }, { path: '__proto__', protoAction: 'remove' })
  yields(t, '{"__proto__":[1]}', [1], { path: '__proto__', protoAction: 'ignore' })
  rejects(t, '{"constructor":{"prototype":[1]}}', { code: forbidden }, { path: 'constructor.prototype' })
  rejects(t, '{"constructor":{"prototype":[1]}}', { code: 'FST_NEXURE_PATH_NOT_ARRAY', message: /removed/ }, { path: 'constructor.prototype', constructorAction: 'remove' })
})

t.test('an element larger than maxItemSize is refused as soon as the limit is crossed', async t => {
  const body = Buffer.from('[1,"' + 'x'.repeat(200) + '",2]')
  const chunks = splitAt(body, Array.from({ length: 30 }, (_, k) => (k + 1) * 8))
  const elementEndsInChunk = Math.floor(body.indexOf('",2') / 8)
  const pool = new BufferPool({ slabSize: 16 })
  const result = scan(chunks, { maxItemSize: 50, pool })
  t.equal(result.error?.code, 'FST_NEXURE_ITEM_TOO_LARGE')
  t.equal(result.error?.offset, 3)
  t.equal(result.error?.item, 1)
  t.match(result.error?.message, /exceeds maxItemSize of 50 bytes/)
  t.equal(result.thrownAt, Math.floor((3 + 50) / 8), 'thrown by the write that crossed the limit')
  t.ok((result.thrownAt as number) < elementEndsInChunk, 'before the element ends')
  t.equal(pool.stats.inUse, 0)
  yields(t, '[' + '"' + 'y'.repeat(48) + '"]', ['y'.repeat(48)], { maxItemSize: 50 })
  rejects(t, '[' + '"' + 'y'.repeat(49) + '"]', { code: 'FST_NEXURE_ITEM_TOO_LARGE', offset: 1, item: 0 }, { maxItemSize: 50 })
  rejects(t, '"' + 'y'.repeat(60) + '"', { code: 'FST_NEXURE_ITEM_TOO_LARGE', offset: 0 }, { maxItemSize: 50 })
})

/** Runs `run` with JSON.parse spied on: its result, and the length of every text parsed. */
function countingParseCalls (run: () => Collected): { result: Collected, texts: number[] } {
  const texts: number[] = []
  const parse = JSON.parse
  JSON.parse = ((text: string, reviver?: (key: string, value: unknown) => unknown) => {
    texts.push(text.length)
    return parse(text, reviver)
  }) as typeof JSON.parse
  try {
    return { result: run(), texts }
  } finally {
    JSON.parse = parse
  }
}

t.test('one parse call per run, bounded by maxParseBytes; a larger element is parsed alone', async t => {
  const elements = Array.from({ length: 2000 }, (_, k) => JSON.stringify({ id: k, name: 'é'.repeat(k % 7), tags: ['a', 'b'] }))
  elements[1000] = JSON.stringify('z'.repeat(5000))
  const body = Buffer.from('[' + elements.join(',') + ']')
  const { result, texts } = countingParseCalls(() => scan(splitAt(body, Array.from({ length: 100 }, (_, k) => k * 1000)), { maxParseBytes: 2048, batchSize: 300 }))
  t.equal(result.error, undefined)
  t.equal(result.items.length, 2000)
  t.same(result.batches, [300, 300, 300, 300, 300, 300, 200])
  const oversized = texts.filter(length => length > 2048 + 2)
  t.same(oversized, [5004], 'only the 5000-byte element went over, alone')
  t.ok(texts.length <= Math.ceil(body.length / 1024) + 7, `${texts.length} parse calls for ${body.length} bytes`)
})

// Object (and array) elements are parsed on a guess: from an element's '{' to the last '},' of the window
// after it, one parse call, no byte walked. A guess that is wrong (a '},' inside a string or
// a nested object), a fault, a poisoned key or a value too deep inside the window must answer
// exactly as the scanner walking every byte does: fed byte by byte, no guess is ever made, and
// `yields`/`rejects` hold every chunking to the same answer.
t.test('object elements parsed on a guess answer as the byte-by-byte scanner', async t => {
  yields(t, '[{"a":"},"},{"b":1},{"c":"x},{"}]', [{ a: '},' }, { b: 1 }, { c: 'x},{' }])
  yields(t, '[{"a":{"b":1},"c":2},{"d":[{"e":1},{"f":2}]},{"g":"}"}]', [{ a: { b: 1 }, c: 2 }, { d: [{ e: 1 }, { f: 2 }] }, { g: '}' }])
  yields(t, '[1,{"a":1},"s",{"b":2},[{"c":3},{"d":4}],{"e":5}]', [1, { a: 1 }, 's', { b: 2 }, [{ c: 3 }, { d: 4 }], { e: 5 }])
  // Arrays of arrays guess up to the last '],'.
  yields(t, '[[1,2],[3,"],"],[4,[5]],[6]]', [[1, 2], [3, '],'], [4, [5]], [6]])
  yields(t, '[[1],{"a":[2],"b":1},[3],{"c":[4]}]', [[1], { a: [2], b: 1 }, [3], { c: [4] }])
  rejects(t, '[[1],[[[[1]]]],[2]]', { code: 'FST_NEXURE_INVALID_JSON', item: 1, offset: 8, message: /maxDepth/ }, { maxDepth: 4 })
  rejects(t, '[[1],[2,],[3]]', { code: 'FST_NEXURE_INVALID_JSON', item: 1 })
  // levels: the array 1, the element 2, then 3, 4, and the '[' at offset 16 opens a fifth.
  rejects(t, '[{"a":1},{"b":[[[1]]]},{"c":1}]', { code: 'FST_NEXURE_INVALID_JSON', item: 1, offset: 16, message: /maxDepth/ }, { maxDepth: 4 })
  yields(t, '[{"a":1},{"b":[[1]]},{"c":1}]', [{ a: 1 }, { b: [[1]] }, { c: 1 }], { maxDepth: 4 })
  rejects(t, '[{"a":1},{"b":tru},{"c":1}]', { code: 'FST_NEXURE_INVALID_JSON', item: 1 })
  rejects(t, '[{"a":1},{"b":{"__proto__":{}}},{"c":1}]', { code: 'FST_NEXURE_FORBIDDEN_PROPERTY', item: 1 })
  yields(t, '[{"a":1},{"__proto__":{"x":1},"b":2},{"c":1}]', [{ a: 1 }, { b: 2 }, { c: 1 }], { protoAction: 'remove' })
  rejects(t, '[{"a":1},{"b":"xxxxxxxxxx"},{"c":1}]', { code: 'FST_NEXURE_ITEM_TOO_LARGE', item: 1, offset: 9 }, { maxItemSize: 12 })
  yields(t, '[{"a":1},{"b":"xxxxxxxxx"},{"c":1}]', [{ a: 1 }, { b: 'xxxxxxxxx' }, { c: 1 }], { maxItemSize: 18 })
  const many = Array.from({ length: 40 }, (_, k) => ({ k }))
  for (const batchSize of [1, 3, 7, 40, 100]) {
    const result = scan([Buffer.from(JSON.stringify(many))], { batchSize })
    t.same(result.items, many)
    const sizes = Array.from({ length: Math.ceil(40 / batchSize) }, (_, k) => Math.min(batchSize, 40 - k * batchSize))
    t.same(result.batches, sizes, `batches of ${batchSize}`)
  }
})

t.test('guesses that keep missing stop: the scanner walks the bytes, at one parse call per run', async t => {
  // Every '},' is inside a string, the elements being separated by ' ,': each guess misses.
  const elements = Array.from({ length: 3000 }, (_, k) => JSON.stringify({ s: `},${k}` }))
  const body = Buffer.from('[' + elements.join(' ,') + ']')
  const { result, texts } = countingParseCalls(() => scan([body], { maxParseBytes: 1024, batchSize: 10000 }))
  t.equal(result.error, undefined)
  t.equal(result.items.length, 3000)
  t.ok(texts.length <= Math.ceil(body.length / 1000) + 8, `${texts.length} parse calls for ${body.length} bytes (8 guesses missed at most)`)
})

t.test('batches hold batchSize items, the last one fewer', async t => {
  const body = Buffer.from(JSON.stringify(Array.from({ length: 10 }, (_, k) => k)))
  for (const { name, chunks } of chunkings(body)) {
    const result = scan(chunks, { batchSize: 3, maxParseBytes: 4 })
    t.same(result.batches, [3, 3, 3, 1], name)
  }
})

t.test('pooled carry-over buffers', async t => {
  t.test('a run wholly inside a chunk is parsed from the chunk, without the pool', async t => {
    const pool = new BufferPool({ slabSize: 64 })
    const body = Buffer.from(JSON.stringify(Array.from({ length: 100 }, (_, k) => ({ k }))))
    t.equal(scan([body], { pool }).items.length, 100)
    t.same(pool.stats, { hits: 0, misses: 0, inUse: 0, pooled: 0, dropped: 0, refused: 0 })
  })
  t.test('an element larger than the slab grows into a plain buffer, and the slab goes back', async t => {
    const pool = new BufferPool({ slabSize: 64 })
    const big = 'é'.repeat(3000)
    const body = Buffer.from(JSON.stringify([1, big, { a: big }, 2]))
    const result = scan(splitAt(body, Array.from({ length: 500 }, (_, k) => k * 37)), { pool })
    t.same(result.items, [1, big, { a: big }, 2])
    t.equal(pool.stats.inUse, 0)
    t.equal(pool.stats.refused, 0)
  })
  t.test('released after end(), after an error, after destroy() mid-element, after a throwing onItems', async t => {
    const pool = new BufferPool({ slabSize: 64 })
    const ok = new JsonArrayScanner({ pool }, () => {})
    ok.write(Buffer.from('[1,{"a":'))
    t.equal(pool.stats.inUse, 1, 'the partial element is carried in a slab')
    ok.write(Buffer.from('2}]'))
    ok.end()
    t.equal(pool.stats.inUse, 0)
    t.equal(ok.bytesScanned, 11)
    t.equal(ok.itemCount, 2)

    const failing = new JsonArrayScanner({ pool }, () => {})
    failing.write(Buffer.from('[1,{"a":'))
    t.throws(() => failing.write(Buffer.from('}]')), { code: 'FST_NEXURE_INVALID_JSON' })
    t.equal(pool.stats.inUse, 0)
    t.throws(() => failing.write(Buffer.from('1')), /after end\(\), destroy\(\) or an error/)

    const destroyed = new JsonArrayScanner({ pool }, () => {})
    destroyed.write(Buffer.from('[1,{"a":"xx'))
    destroyed.destroy()
    destroyed.destroy()
    t.equal(pool.stats.inUse, 0)

    const throwing = new JsonArrayScanner({ pool, batchSize: 1 }, () => { throw new Error('handler failed') })
    throwing.write(Buffer.from('[{"a":'))
    t.throws(() => throwing.write(Buffer.from('1},2]')), /handler failed/)
    t.equal(pool.stats.inUse, 0)

    const incomplete = new JsonArrayScanner({ pool }, () => {})
    incomplete.write(Buffer.from('[1,{"a":'))
    t.throws(() => incomplete.end(), { code: 'FST_NEXURE_INVALID_JSON', offset: 8, item: 1 })
    t.equal(pool.stats.inUse, 0)
    t.equal(pool.stats.refused, 0)
  })
})

t.test('accepts Uint8Array chunks', async t => {
  const bytes = new TextEncoder().encode('[1,"é"]')
  t.same(scan([bytes.subarray(0, 5), bytes.subarray(5)]).items, [1, 'é'])
})

t.test('options are checked', async t => {
  t.throws(() => new JsonArrayScanner({ batchSize: 0 }, () => {}), { code: 'FST_NEXURE_INVALID_OPTION' })
  t.throws(() => new JsonArrayScanner({ maxParseBytes: 1.5 }, () => {}), { code: 'FST_NEXURE_INVALID_OPTION' })
  t.throws(() => new JsonArrayScanner({ maxItemSize: -1 }, () => {}), { code: 'FST_NEXURE_INVALID_OPTION' })
  t.throws(() => new JsonArrayScanner({ path: 'a..b' }, () => {}), { code: 'FST_NEXURE_INVALID_OPTION', message: /path: Invalid path "a\.\.b": empty segment/ })
  t.throws(() => new JsonArrayScanner({ protoAction: 'drop' as 'error' }, () => {}), { code: 'FST_NEXURE_INVALID_OPTION', message: /protoAction: expected one of/ })
})

t.test('parseJsonBody parses whole bodies and locates faults as the scanner does', async t => {
  t.same(parseJsonBody(Buffer.from('\ufeff{"a":[1]}')), { a: [1] })
  t.same(parseJsonBody(Buffer.from('[{"__proto__":1}]'), { protoAction: 'remove' }), [{}])
  t.throws(() => parseJsonBody(Buffer.from('')), { code: 'FST_NEXURE_EMPTY_BODY' })
  t.throws(() => parseJsonBody(Buffer.from('[1, 2, {"a":}]')), { code: 'FST_NEXURE_INVALID_JSON', offset: 12, item: 2 })
  t.throws(() => parseJsonBody(Buffer.from('[1,{"__proto__":1}]')), { code: 'FST_NEXURE_FORBIDDEN_PROPERTY', offset: 3, item: 1 })
  t.throws(() => parseJsonBody(Buffer.from('{"a":1} x')), { code: 'FST_NEXURE_INVALID_JSON', offset: 8 })
})

t.test('empty chunks change nothing, even right after a backslash', async t => {
  const chunks = ['["a\\', '', '"b"', '', ',1]'].map(text => Buffer.from(text))
  t.same(scan(chunks).items, ['a"b', 1])
  t.same(scan([Buffer.alloc(0), Buffer.from('[1]'), Buffer.alloc(0)]).items, [1])
  t.equal(scan([Buffer.alloc(0)]).error?.code, 'FST_NEXURE_EMPTY_BODY')
})

t.test('onItems may destroy the scanner: it stops at once and frees its buffers', async t => {
  const pool = new BufferPool({ slabSize: 64 })
  const seen: unknown[] = []
  const scanner: JsonArrayScanner = new JsonArrayScanner({ pool, batchSize: 2 }, items => {
    seen.push(...items)
    scanner.destroy()
  })
  scanner.write(Buffer.from('[1,2,3,{"a":'))
  t.same(seen, [1, 2], 'one batch, then nothing')
  t.equal(pool.stats.inUse, 0)
  t.throws(() => scanner.write(Buffer.from('1}]')), /after end\(\), destroy\(\) or an error/)

  const atClose: JsonArrayScanner = new JsonArrayScanner({ pool, path: 'items' }, () => atClose.destroy())
  atClose.write(Buffer.from('{"items":[1],"x":"abc'))
  t.equal(pool.stats.inUse, 0, 'nothing scanned or carried after the destroy')
  t.throws(() => atClose.write(Buffer.from('"}')), /after end\(\), destroy\(\) or an error/)
})
