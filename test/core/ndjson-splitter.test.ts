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

// JSON text sequences (RFC 7464): the same machine, cutting before RS (0x1E) instead of after '\n'.

const RS = '\x1e'
const seq: NdjsonSplitterOptions = { format: 'json-seq' }

function rejectsRecord (t: Test, body: string, expected: { code: string, record: number, offset: number, message?: RegExp }, options: NdjsonSplitterOptions = {}): void {
  const buf = Buffer.from(body)
  const pool = new BufferPool({ slabSize: 16 })
  const wrong: string[] = []
  for (const { name, chunks } of chunkings(buf)) {
    const { error } = split(chunks, { pool, ...seq, ...options })
    const record = (error as { record?: number } | undefined)?.record
    if (error === undefined) wrong.push(`${name}: accepted`)
    else if (error.code !== expected.code || record !== expected.record || error.offset !== expected.offset || error.line !== undefined ||
      (expected.message !== undefined && !expected.message.test(error.message))) {
      wrong.push(`${name}: ${error.code} record ${record} offset ${error.offset}: ${error.message}`)
    }
  }
  t.same(wrong, [], `${show(buf, 80)} -> ${expected.code}`)
  t.equal(pool.stats.inUse, 0, 'every pooled buffer released')
}

t.test('json-seq: each RS starts a record; a record may span lines; empty records are nothing', async t => {
  yields(t, `${RS}{"a":1}\n${RS}[2]\n${RS}"3"\n`, [{ a: 1 }, [2], '3'], seq)
  yields(t, `${RS}{\n  "a": [1,\n 2]\n}\n${RS}"x\\ny"\n`, [{ a: [1, 2] }, 'x\ny'], seq)
  yields(t, `${RS}${RS}1\n${RS}\n${RS}  \r\n${RS}2`, [1, 2], seq)
  yields(t, `\n  ${RS}"é😀"\n${RS}{"中":"文"}\n`, ['é😀', { 中: '文' }], seq)
  yields(t, '', [], seq)
  yields(t, `${RS}\n`, [], seq)
  // A '\n' is whitespace inside a record, not a separator: NDJSON would see two lines here.
  yields(t, `${RS}[1,\n2]\n`, [[1, 2]], seq)
})

t.test('json-seq: a fault names its record and byte offset', async t => {
  rejectsRecord(t, `${RS}1\n${RS}1,2\n${RS}3\n`, { code: 'FST_NEXURE_INVALID_JSON', record: 2, offset: 5, message: /at byte offset 5 \(record 2\)$/ })
  rejectsRecord(t, `${RS}{"a":\n1,}\n`, { code: 'FST_NEXURE_INVALID_JSON', record: 1, offset: 9 })
  rejectsRecord(t, `{"a":1}\n${RS}2\n`, { code: 'FST_NEXURE_INVALID_JSON', record: 0, offset: 0, message: /start each record with RS/ })
  rejectsRecord(t, `${RS}1\n${RS}{"__proto__":{}}\n`, { code: 'FST_NEXURE_FORBIDDEN_PROPERTY', record: 2, offset: 4 })
  rejectsRecord(t, `${RS}[[[1]]]\n`, { code: 'FST_NEXURE_INVALID_JSON', record: 1, offset: 3, message: /maxDepth/ }, { maxDepth: 2 })
  rejectsRecord(t, `${RS}1\n${RS}"${'x'.repeat(40)}"\n`, { code: 'FST_NEXURE_ITEM_TOO_LARGE', record: 2, offset: 4, message: /a record starting at byte offset 4 \(record 2\)/ }, { maxItemSize: 20 })
})

t.test('json-seq: RS inside a string is not a separator the parser lets through', async t => {
  // RS is a control character: raw inside a string it is invalid JSON, so cutting on it never
  // splits a valid record.
  rejectsRecord(t, `${RS}"a${RS}b"\n`, { code: 'FST_NEXURE_INVALID_JSON', record: 1, offset: 3 })
})

t.test('parseNdjsonBody takes a JSON text sequence too', async t => {
  t.same(parseNdjsonBody(Buffer.from(`${RS}1\n${RS}{"b":2}\n`), { format: 'json-seq' }), [1, { b: 2 }])
  t.throws(() => new NdjsonSplitter({ format: 'csv' as 'ndjson' }, () => {}), { code: 'FST_NEXURE_INVALID_OPTION' })
})

// skip: records that are not JSON are handed over and left out; the rest is unaffected.

interface Skipped { index: number, line: number, offset: number, code: string }

function skips (t: Test, body: string, items: unknown[], skipped: Skipped[], options: NdjsonSplitterOptions = {}): void {
  const buf = Buffer.from(body)
  const pool = new BufferPool({ slabSize: 16 })
  const wrong: string[] = []
  for (const { name, chunks } of chunkings(buf)) {
    const seen: Skipped[] = []
    const result = split(chunks, {
      pool,
      skip: (error, fault) => { seen.push({ ...fault, code: error.code }) },
      ...options
    })
    if (result.error !== undefined) wrong.push(`${name}: threw ${result.error.message}`)
    else if (!isDeepStrictEqual(result.items, items)) wrong.push(`${name}: items ${show(result.items)}`)
    else if (!isDeepStrictEqual(seen, skipped)) wrong.push(`${name}: skipped ${show(seen)}`)
  }
  t.same(wrong, [], `${show(buf, 80)} skips ${skipped.length}`)
  t.equal(pool.stats.inUse, 0, 'every pooled buffer released')
}

t.test('skip: a line that is not JSON is left out with its index, line and offset', async t => {
  skips(t, '1\n{bad\n\n3\n1,2\n"é"\n', [1, 3, 'é'], [
    { index: 1, line: 2, offset: 3, code: 'FST_NEXURE_INVALID_JSON' },
    { index: 3, line: 5, offset: 11, code: 'FST_NEXURE_INVALID_JSON' }
  ])
  skips(t, '"é"\n[[[1]]]\n2', ['é', 2], [{ index: 1, line: 2, offset: 7, code: 'FST_NEXURE_INVALID_JSON' }], { maxDepth: 2 })
  skips(t, `${RS}1\n${RS}nope\n${RS}2\n`, [1, 2], [{ index: 1, line: 2, offset: 5, code: 'FST_NEXURE_INVALID_JSON' }], seq)
  skips(t, `junk${RS}1\n`, [1], [{ index: 0, line: 0, offset: 0, code: 'FST_NEXURE_INVALID_JSON' }], seq)
})

t.test('skip: accept refuses values, located at the start of their line', async t => {
  const accept = (value: unknown): Error | null => typeof value === 'number' ? null : Object.assign(new Error('not a number'), { code: 'X' })
  skips(t, '1\n"é"\n  {"a":1}\n2\n', [1, 2], [
    { index: 1, line: 2, offset: 2, code: 'X' },
    { index: 2, line: 3, offset: 7, code: 'X' }
  ], { accept })
  skips(t, '1\n"a"\n{bad\n2', [1, 2], [
    { index: 1, line: 2, offset: 2, code: 'X' },
    { index: 2, line: 3, offset: 7, code: 'FST_NEXURE_INVALID_JSON' }
  ], { accept })
})

t.test('skip: too large and forbidden still fail; skip may throw to end the body', async t => {
  const skip = (): void => {}
  rejects(t, '1\n"' + 'x'.repeat(30) + '"\n', { code: 'FST_NEXURE_ITEM_TOO_LARGE', line: 2, offset: 2 }, { skip, maxItemSize: 10 })
  rejects(t, '1\n{"__proto__":{}}\n', { code: 'FST_NEXURE_FORBIDDEN_PROPERTY', line: 2, offset: 2 }, { skip })
  let count = 0
  const limited = (error: Error): void => { if (++count > 1) throw error }
  const { error, items } = split([Buffer.from('1\nx\n2\ny\n3\n')], { skip: limited })
  t.equal(error?.code, 'FST_NEXURE_INVALID_JSON')
  t.equal(error?.line, 4, 'the second bad line ends it')
  t.same(items, [], 'its batch was not handed out')
})
