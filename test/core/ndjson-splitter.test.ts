import t, { type Test } from 'tap'
import { isDeepStrictEqual } from 'node:util'
import { NdjsonSplitter } from '../../lib/core/ndjson-splitter.js'
import type { NdjsonSplitterOptions } from '../../lib/core/ndjson-splitter.js'
import { BufferPool } from '../../lib/core/buffer-pool.js'
import { parseNdjsonBody } from '../../lib/core/whole-body.js'
import { chunkings, collect, show, splitAt } from '../helpers/chunking.js'
import type { Collected } from '../helpers/chunking.js'


function split (chunks: readonly Uint8Array[], options: NdjsonSplitterOptions = {}): Collected {
  return collect(onItems => new NdjsonSplitter(options, onItems), chunks)
}

function yields (t: Test, body: string | Buffer, items: unknown[], options: NdjsonSplitterOptions = {}): void {
  const buf = typeof body === 'string' ? Buffer.from(body) : body
  const pool = new BufferPool({ slabSize: 16 })
  const wrong: string[] = []
  for (const { name, chunks } of chunkings(buf)) {
    const result = split(chunks, { pool, ...options })
    if (result.error !== undefined) wrong.push(`${name}: threw ${result.error.message}`)
    else if (!isDeepStrictEqual(result.items, items)) wrong.push(`${name}: ${show(result.items)}`)
  }
  t.same(wrong, [], `${show(buf, 80)} yields ${show(items, 60)}`)
  t.equal(pool.stats.inUse, 0, 'every pooled buffer released')
}

function rejects (t: Test, body: string, expected: { code: string, line: number, offset: number, message?: RegExp }, options: NdjsonSplitterOptions = {}): void {
  const buf = Buffer.from(body)
  const pool = new BufferPool({ slabSize: 16 })
  const wrong: string[] = []
  for (const { name, chunks } of chunkings(buf)) {
    const { error } = split(chunks, { pool, ...options })
    if (error === undefined) wrong.push(`${name}: accepted`)
    else if (error.code !== expected.code || error.line !== expected.line || error.offset !== expected.offset ||
      (expected.message !== undefined && !expected.message.test(error.message))) {
      wrong.push(`${name}: ${error.code} line ${error.line} offset ${error.offset}: ${error.message}`)
    }
  }
  t.same(wrong, [], `${show(buf, 80)} -> ${expected.code}`)
  t.equal(pool.stats.inUse, 0, 'every pooled buffer released')
}

t.test('one value per line; \\r\\n, blank lines and a last line without \\n', async t => {
  yields(t, '{"a":1}\n[2]\n"3"\n', [{ a: 1 }, [2], '3'])
  yields(t, '{"a":1}\r\n[2]\r\n', [{ a: 1 }, [2]])
  yields(t, '\n\n1\n  \n\t\r\n \r\n2\n\n', [1, 2])
  yields(t, '1\n2', [1, 2])
  yields(t, '  {"a" : [1, "x\\ny"]}  \t\n', [{ a: [1, 'x\ny'] }])
  yields(t, '"é😀"\n{"中":"文"}', ['é😀', { 中: '文' }])
  yields(t, '\ufeff{"a":1}\n2', [{ a: 1 }, 2])
})

t.test('an empty body is zero items, not an error', async t => {
  yields(t, '', [])
  yields(t, '\n\r\n  \n', [])
})

t.test('a line that is not one JSON value names its line and byte offset', async t => {
  rejects(t, '1\n1,2\n3', { code: 'FST_NEXURE_INVALID_JSON', line: 2, offset: 3, message: /at byte offset 3 \(line 2\)$/ })
  rejects(t, '{"a":1}\n\n{"a":}\n', { code: 'FST_NEXURE_INVALID_JSON', line: 3, offset: 14 })
  rejects(t, '"éé"\r\n{"é": x}', { code: 'FST_NEXURE_INVALID_JSON', line: 2, offset: Buffer.from('"éé"\r\n{"é": x}').indexOf('x') })
  rejects(t, '[1,\n2]', { code: 'FST_NEXURE_INVALID_JSON', line: 1, offset: 3 })
  rejects(t, '1\n{"__proto__":1}', { code: 'FST_NEXURE_FORBIDDEN_PROPERTY', line: 2, offset: 2 })
})

t.test('a poisoned key is found in every spelling, beside lines that need no second look', async t => {
  // Lines are parsed with plain JSON.parse when their chunk cannot hold a poisoned key: the
  // check must see every way to write one.
  rejects(t, '{"a":1}\n{"b":2}\n{"\\u005f_proto__":{"x":1}}\n', { code: 'FST_NEXURE_FORBIDDEN_PROPERTY', line: 3, offset: 16 })
  rejects(t, '{"a":1}\n{"c":{"constructor":{"prototype":{"x":1}}}}\n', { code: 'FST_NEXURE_FORBIDDEN_PROPERTY', line: 2, offset: 8 })
  rejects(t, '{"a":1}\n{"\\u0063onstructor":{"prototype":1}}\n', { code: 'FST_NEXURE_FORBIDDEN_PROPERTY', line: 2, offset: 8 })
  yields(t, '{"note":"a __proto__ in a string is no key"}\n{"a":"\\u00e9"}\n', [{ note: 'a __proto__ in a string is no key' }, { a: 'é' }])
})

t.test('poisoning actions apply per line', async t => {
  yields(t, '{"__proto__":{"x":1},"a":1}\n{"constructor":{"prototype":1}}', [{ a: 1 }, {}], { protoAction: 'remove', constructorAction: 'remove' })
  const [item] = parseNdjsonBody(Buffer.from('{"__proto__":{"x":1}}'), { protoAction: 'ignore' })
  t.ok(Object.hasOwn(item as object, '__proto__'))
})

t.test('a line longer than maxItemSize is refused as soon as the limit is crossed', async t => {
  const body = Buffer.from('1\n"' + 'x'.repeat(300) + '"\n2\n')
  const pool = new BufferPool({ slabSize: 16 })
  const result = split(splitAt(body, Array.from({ length: 40 }, (_, k) => (k + 1) * 10)), { maxItemSize: 64, pool })
  t.equal(result.error?.code, 'FST_NEXURE_ITEM_TOO_LARGE')
  t.equal(result.error?.line, 2)
  t.equal(result.error?.offset, 2)
  t.equal(result.thrownAt, Math.floor((2 + 64) / 10), 'thrown by the write that crossed the limit, long before the line ends')
  t.equal(pool.stats.inUse, 0)
  yields(t, '"' + 'y'.repeat(62) + '"\n1', ['y'.repeat(62), 1], { maxItemSize: 64 })
  rejects(t, '1\n"' + 'y'.repeat(63) + '"', { code: 'FST_NEXURE_ITEM_TOO_LARGE', line: 2, offset: 2 }, { maxItemSize: 64 })
})

t.test('batches hold batchSize items', async t => {
  const body = Buffer.from(Array.from({ length: 10 }, (_, k) => String(k)).join('\n'))
  for (const { name, chunks } of chunkings(body)) t.same(split(chunks, { batchSize: 4 }).batches, [4, 4, 2], name)
})

t.test('a long line outgrows the slab and the slab goes back; lines inside one chunk use no pool', async t => {
  const pool = new BufferPool({ slabSize: 32 })
  const long = { text: 'é'.repeat(2000) }
  const body = Buffer.from(`1\n${JSON.stringify(long)}\n2\n`)
  const result = split(splitAt(body, Array.from({ length: 100 }, (_, k) => k * 53)), { pool })
  t.same(result.items, [1, long, 2])
  t.equal(pool.stats.inUse, 0)
  const fresh = new BufferPool({ slabSize: 32 })
  t.same(split([Buffer.from('1\n2\n3\n')], { pool: fresh }).items, [1, 2, 3])
  t.equal(fresh.stats.misses, 0, 'no carry-over needed')

  const destroyed = new NdjsonSplitter({ pool }, () => {})
  destroyed.write(Buffer.from('1\n{"a":'))
  t.equal(pool.stats.inUse, 1)
  destroyed.destroy()
  destroyed.destroy()
  t.equal(pool.stats.inUse, 0)
  t.throws(() => destroyed.write(Buffer.from('1')), /after end\(\), destroy\(\) or an error/)
})

t.test('counters, and a throwing onItems', async t => {
  const splitter = new NdjsonSplitter({ batchSize: 2 }, () => {})
  splitter.write(Buffer.from('1\n2\n3'))
  t.equal(splitter.bytesScanned, 5)
  t.equal(splitter.itemCount, 2)
  splitter.end()
  t.equal(splitter.itemCount, 3)
  const pool = new BufferPool({ slabSize: 16 })
  const throwing = new NdjsonSplitter({ batchSize: 1, pool }, () => { throw new Error('handler failed') })
  throwing.write(Buffer.from('[1,'))
  t.throws(() => throwing.write(Buffer.from('2]\n')), /handler failed/)
  t.equal(pool.stats.inUse, 0)
})

t.test('options are checked', async t => {
  t.throws(() => new NdjsonSplitter({ batchSize: 0 }, () => {}), { code: 'FST_NEXURE_INVALID_OPTION' })
  t.throws(() => new NdjsonSplitter({ maxItemSize: 0.5 }, () => {}), { code: 'FST_NEXURE_INVALID_OPTION' })
  t.throws(() => new NdjsonSplitter({ constructorAction: 'x' as 'error' }, () => {}), { code: 'FST_NEXURE_INVALID_OPTION', message: /constructorAction: expected one of 'error', 'remove', 'ignore', got "x"/ })
})

t.test('parseNdjsonBody gives every line value, or the located error', async t => {
  t.same(parseNdjsonBody(Buffer.from('1\n\n{"a":2}\r\n')), [1, { a: 2 }])
  t.same(parseNdjsonBody(Buffer.from('')), [])
  t.throws(() => parseNdjsonBody(Buffer.from('1\nx\n')), { code: 'FST_NEXURE_INVALID_JSON', line: 2, offset: 2 })
})

t.test('onItems may destroy the splitter: it stops at once and frees its buffers', async t => {
  const pool = new BufferPool({ slabSize: 16 })
  const seen: unknown[] = []
  const splitter: NdjsonSplitter = new NdjsonSplitter({ pool, batchSize: 1 }, items => {
    seen.push(...items)
    splitter.destroy()
  })
  splitter.write(Buffer.from('1\n2\n{"a":'))
  t.same(seen, [1])
  t.equal(pool.stats.inUse, 0)
  t.same(split([Buffer.from('1\n'), Buffer.alloc(0), Buffer.from('2')]).items, [1, 2], 'empty chunks change nothing')
})
