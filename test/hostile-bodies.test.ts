// A corpus of hostile bodies, each sent through the real plugin over a real socket, each with the
// answer nexure owes it. After every one the server must still answer an ordinary request, and
// nothing (pooled slab, descriptor, temp file) may be left behind.

import t, { type Test } from 'tap'
import net from 'node:net'
import zlib from 'node:zlib'
import { once } from 'node:events'
import { readdir } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import Fastify from 'fastify'
import { request } from 'undici'
import { BufferPool, streamBody, streamUpload } from '../lib/index.js'
import { bodyApp, listen } from './helpers/server.js'
import { eventually, multipartBody, openFds, testTempDir } from './helpers/multipart.js'

const MiB = 1024 * 1024
const JSON_TYPE = { 'content-type': 'application/json' }
const NDJSON_TYPE = { 'content-type': 'application/x-ndjson' }

interface Failure { code?: string, message?: string }

/**
 * One app for the corpus: `/import` streams every body (streamThreshold 0), `/small` reads
 * bodies up to 1 MiB whole first (the buffered path); both count items and report the failure
 * their loop saw. The pool is ours so that its `inUse` can be checked.
 */
async function corpusApp (t: Test, options: Parameters<typeof bodyApp>[1] = {}, server = {}): Promise<{ app: FastifyInstance, url: string, pool: BufferPool, failures: Failure[] }> {
  const pool = new BufferPool()
  const app = await bodyApp(t, { pool, ...options }, server)
  const failures: Failure[] = []
  const handler = async (req: FastifyRequest) => {
    let count = 0
    const items: unknown[] = []
    try {
      for await (const batch of req.batches()) {
        count += batch.length
        if (items.length < 100) items.push(...batch.slice(0, 100 - items.length))
      }
    } catch (error) {
      failures.push(error as Failure)
      throw error
    }
    return { count, items }
  }
  app.post('/import', { config: { streamBody: { streamThreshold: 0 } } }, handler)
  app.post('/small', handler)
  const url = await listen(app)
  return { app, url, pool, failures }
}

async function post (url: string, body: string | Buffer | Readable, headers: Record<string, string> = JSON_TYPE): Promise<{ status: number, json: any, headers: Record<string, unknown> }> {
  const res = await request(url, { method: 'POST', headers, body })
  const text = await res.body.text()
  let json: any
  try { json = JSON.parse(text) } catch { json = text }
  return { status: res.statusCode, json, headers: res.headers }
}

/** The server still answers an ordinary body, and nothing pooled is left in use. */
async function stillServing (t: Test, url: string, pool: BufferPool): Promise<void> {
  const res = await post(`${url}/import`, '[1,2,3]')
  t.equal(res.status, 200, 'the server keeps serving')
  t.equal(res.json.count, 3)
  t.ok(await eventually(async () => pool.stats.inUse === 0, 3000), `no pooled slab left in use (${pool.stats.inUse})`)
}

/**
 * A body made on the fly, chunk by chunk, that stops as soon as `stopped()` says so (the
 * response arrived): a gigabyte is only produced if the server really reads a gigabyte.
 */
function generated (first: string, chunk: Buffer, total: number, last: string, stopped: () => boolean): Readable & { sent: () => number } {
  let sent = 0
  const stream = new Readable({
    read () {
      if (stopped() || sent >= total) {
        if (!stopped()) this.push(last)
        this.push(null)
        return
      }
      if (sent === 0) this.push(first)
      sent += chunk.length
      this.push(Buffer.from(chunk))
    }
  }) as Readable & { sent: () => number }
  stream.sent = () => sent
  return stream
}

/** Writes `head` (and body bytes) on a raw socket; collects everything the server sends until it closes. */
async function rawExchange (url: string, write: (socket: net.Socket) => Promise<void> | void, waitMs = 3000): Promise<string> {
  const { port, hostname } = new URL(url)
  const socket = net.connect(Number(port), hostname)
  socket.on('error', () => {})
  await once(socket, 'connect')
  let response = ''
  socket.on('data', chunk => { response += chunk.toString('latin1') })
  const closed = once(socket, 'close')
  await write(socket)
  await Promise.race([closed, sleep(waitMs)])
  socket.destroy()
  return response
}

// ---- nesting -------------------------------------------------------------------------------

t.test('nesting a million levels deep: 400 "nested too deeply", no crash, and the server keeps serving', async t => {
  // V8's JSON.parse is iterative and accepts this; but 16 MiB of '[' (under maxItemSize) become
  // ~450 MB of heap and two seconds of blocked event loop, and the value breaks every recursive
  // consumer (JSON.stringify, Ajv, util.inspect all throw RangeError on it). Refuse it.
  const { url, pool } = await corpusApp(t)
  const depth = 1_000_000
  const cases: Array<[string, string, string | Buffer, Record<string, string>]> = [
    ['streamed array in an array', '/import', '[' + '['.repeat(depth) + ']'.repeat(depth) + ']', JSON_TYPE],
    ['streamed objects', '/import', '{"a":'.repeat(depth) + '1' + '}'.repeat(depth), JSON_TYPE],
    ['buffered (under streamThreshold)', '/small', '['.repeat(400_000) + ']'.repeat(400_000), JSON_TYPE],
    ['an NDJSON line', '/import', '1\n' + '['.repeat(depth) + ']'.repeat(depth) + '\n2\n', NDJSON_TYPE]
  ]
  for (const [name, path, body, headers] of cases) {
    const res = await post(`${url}${path}`, body, headers)
    t.equal(res.status, 400, `${name}: 400`)
    t.equal(res.json.code, 'FST_NEXURE_INVALID_JSON', `${name}: FST_NEXURE_INVALID_JSON`)
    t.match(res.json.message, /nested too deeply/, `${name}: says why`)
  }
  await stillServing(t, url, pool)
})

// ---- size ----------------------------------------------------------------------------------

t.test('a single 100 MB string is a 413 long before 100 MB are read or buffered', async t => {
  const { url, pool } = await corpusApp(t)
  for (const [name, first, last] of [['an array element', '["', '"]'], ['the top-level value', '"', '"']] as const) {
    let answered = false
    const body = generated(first, Buffer.alloc(64 * 1024, 0x78), 100 * 1000 * 1000, last, () => answered)
    const rssBefore = process.memoryUsage().rss
    const res = await post(`${url}/import`, body).finally(() => { answered = true })
    t.equal(res.status, 413, `${name}: 413`)
    t.equal(res.json.code, 'FST_NEXURE_ITEM_TOO_LARGE')
    t.match(res.json.message, /16777216/, 'names the default maxItemSize')
    t.ok(body.sent() < 48 * MiB, `${name}: refused after ${(body.sent() / MiB).toFixed(1)} MiB were sent, not 100 MB`)
    t.ok(process.memoryUsage().rss - rssBefore < 160 * MiB, 'the string was never held whole')
  }
  await stillServing(t, url, pool)
})

t.test('ten million tiny items: 200 with the right count, in bounded memory', async t => {
  const { url, pool } = await corpusApp(t)
  const items = 10_000_000
  const perChunk = 32 * 1024
  let sent = 0
  const body = new Readable({
    read () {
      if (sent >= items) { this.push(null); return }
      const n = Math.min(perChunk, items - sent)
      const text = (sent === 0 ? '[' : ',') + '0,'.repeat(n - 1) + '0' + (sent + n === items ? ']' : '')
      sent += n
      this.push(text)
    }
  })
  let peak = 0
  const before = process.memoryUsage().rss
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss - before) }, 20)
  const started = performance.now()
  const res = await post(`${url}/import`, body)
  clearInterval(sampler)
  t.equal(res.status, 200)
  t.equal(res.json.count, items, 'every item counted')
  t.ok(peak < 200 * MiB, `RSS grew by at most ${(peak / MiB).toFixed(0)} MiB for ~20 MB of items`)
  t.comment(`10M items in ${((performance.now() - started) / 1000).toFixed(1)} s, peak RSS growth ${(peak / MiB).toFixed(0)} MiB`)
  await stillServing(t, url, pool)
})

t.test('an NDJSON line of 1 GB without a newline is a 413 without reading 1 GB', async t => {
  const { url, pool } = await corpusApp(t)
  let answered = false
  const body = generated('{"a":"', Buffer.alloc(256 * 1024, 0x79), 1024 * MiB, '"}\n', () => answered)
  const started = performance.now()
  const res = await post(`${url}/import`, body, NDJSON_TYPE).finally(() => { answered = true })
  t.equal(res.status, 413)
  t.equal(res.json.code, 'FST_NEXURE_ITEM_TOO_LARGE')
  t.match(res.json.message, /line 1/)
  t.ok(body.sent() < 64 * MiB, `refused after ${(body.sent() / MiB).toFixed(1)} MiB of the gigabyte`)
  t.ok(performance.now() - started < 10_000, 'in seconds, not minutes')
  await stillServing(t, url, pool)
})

// ---- JSON text sequences and skipping ------------------------------------------------------

const SEQ_TYPE = { 'content-type': 'application/json-seq' }

t.test('a JSON sequence: a 1 GB record is a 413 without reading 1 GB; deep and poisoned records are 400s', async t => {
  const { url, pool } = await corpusApp(t)
  let answered = false
  const body = generated('\x1e{"a":"', Buffer.alloc(256 * 1024, 0x79), 1024 * MiB, '"}\n', () => answered)
  const res = await post(`${url}/import`, body, SEQ_TYPE).finally(() => { answered = true })
  t.equal(res.status, 413)
  t.equal(res.json.code, 'FST_NEXURE_ITEM_TOO_LARGE')
  t.match(res.json.message, /a record starting at byte offset 1 \(record 1\)/)
  t.ok(body.sent() < 64 * MiB, `refused after ${(body.sent() / MiB).toFixed(1)} MiB of the gigabyte`)
  const depth = 1_000_000
  for (const path of ['/import', '/small']) {
    const deep = await post(`${url}${path}`, `\x1e1\n\x1e${'['.repeat(depth)}${']'.repeat(depth)}\n`, SEQ_TYPE)
    t.match(deep, { status: 400, json: { code: 'FST_NEXURE_INVALID_JSON', message: /nested too deeply.*\(record 2\)/ } }, `${path}: too deep`)
    for (const line of POISONED.map(body => body.replace(/\n/g, ' '))) {
      const poisoned = await post(`${url}${path}`, `\x1e{"ok":true}\n\x1e${line}\n`, SEQ_TYPE)
      t.match(poisoned, { status: 400, json: { code: 'FST_NEXURE_FORBIDDEN_PROPERTY', message: /\(record 2\)/ } }, `${path} ${JSON.stringify(line)}`)
    }
  }
  await stillServing(t, url, pool)
})

t.test("onInvalidItem: 'skip' does not turn garbage into work: past maxSkipped it is a 400; poison and size still fail", async t => {
  const { url, pool } = await corpusApp(t, { onInvalidItem: 'skip', maxSkipped: 1000, maxItemSize: 1024, maxDepth: 100 })
  // Endless garbage lines: refused at the 1001st, long before the body ends.
  let answered = false
  const body = generated('', Buffer.from('not json\n'.repeat(10_000)), 1024 * MiB, '', () => answered)
  const res = await post(`${url}/import`, body, NDJSON_TYPE).finally(() => { answered = true })
  t.equal(res.status, 400)
  t.match(res.json, { code: 'FST_NEXURE_INVALID_JSON', message: /\(line 1001\) \(1000 invalid items were skipped already; maxSkipped is 1000\)$/ })
  t.ok(body.sent() < 16 * MiB, `refused after ${(body.sent() / MiB).toFixed(1)} MiB`)
  for (const path of ['/import', '/small']) {
    const poisoned = await post(`${url}${path}`, 'bad\n{"ok":1}\n{"__proto__":{"isAdmin":true}}\n', NDJSON_TYPE)
    t.match(poisoned, { status: 400, json: { code: 'FST_NEXURE_FORBIDDEN_PROPERTY', message: /line 3/ } }, `${path}: a poisoned line is not skipped`)
    const large = await post(`${url}${path}`, `bad\n"${'x'.repeat(2000)}"\n`, NDJSON_TYPE)
    t.match(large, { status: 413, json: { code: 'FST_NEXURE_ITEM_TOO_LARGE' } }, `${path}: a line past maxItemSize is not skipped`)
    const deep = await post(`${url}${path}`, `1\n${'['.repeat(300)}${']'.repeat(300)}\n2\n`, NDJSON_TYPE)
    t.same(deep.json.items, [1, 2], `${path}: a line too deep is skipped, and nothing deep reaches the handler`)
  }
  await stillServing(t, url, pool)
})

// ---- prototype poisoning -------------------------------------------------------------------

const POISONED = [
  '[{"__proto__":{"isAdmin":true}}]',
  '[{"\\u005f_proto__":{"isAdmin":true}}]',
  '[{"\\u005F\\u005Fproto\\u005f\\u005f":1}]',
  '[{"\\u005f\\u005f\\u0070\\u0072\\u006f\\u0074\\u006f\\u005f\\u005f":1}]',
  '[{"__pr\\u006Fto__" \n\t: 1}]',
  '[{"constructor":{"prototype":{"isAdmin":true}}}]',
  '[{"\\u0063onstructor":{"\\u0070rototype":1}}]',
  '[1,{"a":{"b":[{"c":{"__proto__":[]}}]}},2]',
  '[{"ok":1},{"x":[{"constructor":{"prototype":null}}]}]',
  '{"__proto__":{"isAdmin":true}}',
  '{"user":{"constructor":{"prototype":{"isAdmin":true}}}}'
]

t.test('prototype poisoning in every spelling is a 400 FST_NEXURE_FORBIDDEN_PROPERTY, streamed and buffered', async t => {
  const { url, pool } = await corpusApp(t)
  for (const body of POISONED) {
    for (const path of ['/import', '/small']) {
      const res = await post(`${url}${path}`, body)
      t.equal(res.status, 400, `${path} ${JSON.stringify(body)}: 400`)
      t.equal(res.json.code, 'FST_NEXURE_FORBIDDEN_PROPERTY', `${path} ${JSON.stringify(body)}: FORBIDDEN_PROPERTY`)
    }
  }
  // The same texts inside NDJSON lines, after a good line.
  for (const line of POISONED.map(body => body.replace(/\n/g, ' '))) {
    const res = await post(`${url}/import`, `{"ok":true}\n${line}\n{"ok":true}\n`, NDJSON_TYPE)
    t.equal(res.status, 400, `NDJSON ${JSON.stringify(line)}: 400`)
    t.equal(res.json.code, 'FST_NEXURE_FORBIDDEN_PROPERTY')
    t.match(res.json.message, /line 2/, 'names the line')
  }
  // Not poisoning: the key text inside a string value, and keys that only look alike.
  for (const body of ['["{\\"__proto__\\":1}"]', '[{"__proto_":1,"proto":2,"_proto__":3}]', '[{"constructor":{"x":1}},{"prototype":{}}]']) {
    const res = await post(`${url}/import`, body)
    t.equal(res.status, 200, `${JSON.stringify(body)} is not poisoning: 200`)
    t.same(res.json.items, JSON.parse(body))
  }
  await stillServing(t, url, pool)
})

t.test('poisoning with a path: a forbidden key beside or on the way to the streamed array', async t => {
  const app = await bodyApp(t)
  app.post('/items', async req => {
    let count = 0
    for await (const batch of req.batches({ path: 'items' })) count += batch.length
    return { count }
  })
  const url = await listen(app)
  for (const body of ['{"__proto__":{"x":1},"items":[1,2]}', '{"items":[1,{"__proto__":1}]}', '{"items":[1],"\\u005f_proto__":[]}', '{"constructor":{"prototype":{}},"items":[1]}']) {
    const res = await post(`${url}/items`, body)
    t.equal(res.status, 400, `${JSON.stringify(body)}: 400`)
    t.equal(res.json.code, 'FST_NEXURE_FORBIDDEN_PROPERTY')
  }
})

t.test('wildcards and entries: a poisoned entry value, nesting past maxDepth in a * match, an entry value past maxItemSize', async t => {
  const { url, pool } = await corpusApp(t, { maxItemSize: MiB })
  const app = Fastify()
  t.teardown(() => app.close())
  // The corpus app's routes take no options: a second app routes batches({ path, entries }).
  await app.register(streamBody, { pool, streamThreshold: 0, maxItemSize: MiB, maxDepth: 64 })
  app.post('/pick', async req => {
    const query = req.query as { path?: string, entries?: string }
    let count = 0
    for await (const batch of req.batches({ path: query.path, entries: query.entries === '1' })) count += batch.length
    return { count }
  })
  const pick = await listen(app)
  for (const body of ['{"a":1,"b":{"x":{"__proto__":{"isAdmin":true}}}}', '{"a":{"x":[{"constructor":{"prototype":{}}}]}}', '{"ok":1,"\\u005f_proto__":{"isAdmin":true}}']) {
    const res = await post(`${pick}/pick?entries=1`, body)
    t.equal(res.status, 400, `entries ${JSON.stringify(body)}: 400`)
    t.equal(res.json.code, 'FST_NEXURE_FORBIDDEN_PROPERTY')
    t.match(res.json.message, /at byte offset \d+/, 'says where')
  }
  const deep = await post(`${pick}/pick?path=data.*`, '{"data":{"a":[[1]],"b":[' + '['.repeat(1_000_000) + ']'.repeat(1_000_000) + ']}}')
  t.equal(deep.status, 400, 'a * match nested a million levels deep: 400')
  t.equal(deep.json.code, 'FST_NEXURE_INVALID_JSON')
  t.match(deep.json.message, /nested too deeply.*at byte offset 85 \(item 1\)/, 'at its 65th level, in the second item')
  let answered = false
  const big = generated('{"small":1,"big":"', Buffer.alloc(64 * 1024, 0x78), 100 * 1000 * 1000, '"}', () => answered)
  const res = await post(`${pick}/pick?entries=1`, big).finally(() => { answered = true })
  t.equal(res.status, 413, 'an entry value of 100 MB: 413')
  t.equal(res.json.code, 'FST_NEXURE_ITEM_TOO_LARGE')
  t.match(res.json.message, /an entry value starting at byte offset 17 \(item 1\)/)
  t.ok(big.sent() < 32 * MiB, `refused after ${(big.sent() / MiB).toFixed(1)} MiB were sent, not 100 MB`)
  const fine = await post(`${pick}/pick?path=groups.*`, '{"groups":{"a":[1,2],"b":[3]}}')
  t.same([fine.status, fine.json.count], [200, 3], 'the server keeps serving')
  await stillServing(t, url, pool)
})

t.test("onProtoPoisoning: 'remove' (the server's option) drops the key instead of refusing", async t => {
  const { url } = await corpusApp(t, {}, { onProtoPoisoning: 'remove' })
  for (const path of ['/import', '/small']) {
    const res = await post(`${url}${path}`, '[{"a":1,"__proto__":{"isAdmin":true}}]')
    t.equal(res.status, 200, `${path}: 200`)
    t.same(res.json.items, [{ a: 1 }], `${path}: the key is gone`)
  }
})

// ---- encodings of text ---------------------------------------------------------------------

t.test('invalid UTF-8 inside strings is accepted as U+FFFD, exactly as JSON.parse(buffer.toString()) reads it', async t => {
  const { url, pool } = await corpusApp(t)
  const body = Buffer.concat([
    Buffer.from('["a'), Buffer.from([0xff, 0xfe]), Buffer.from('b","'), Buffer.from([0xc3]), Buffer.from('(","'),
    Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('","'), Buffer.from([0xc0, 0xaf]), Buffer.from('","'),
    Buffer.from([0xf0, 0x9f, 0x98]), Buffer.from('"]')
  ])
  const expected = JSON.parse(body.toString('utf8'))
  t.ok(expected.join('').includes('\ufffd'), 'the reference reads replacement characters')
  for (const path of ['/import', '/small']) {
    // One byte per chunk: every invalid sequence is also cut.
    const res = await post(`${url}${path}`, Readable.from([...body].map(byte => Buffer.from([byte]))))
    t.equal(res.status, 200, `${path}: 200`)
    t.same(res.json.items, expected, `${path}: the same strings as Buffer#toString gives`)
  }
  const outside = await post(`${url}/import`, Buffer.concat([Buffer.from('[1,'), Buffer.from([0xff]), Buffer.from(']')]))
  t.equal(outside.status, 400, 'an invalid byte outside a string is a 400, as JSON.parse says')
  t.equal(outside.json.code, 'FST_NEXURE_INVALID_JSON')
  t.match(outside.json.message, /byte offset 3/)
  await stillServing(t, url, pool)
})

t.test('a UTF-8 BOM at the start is accepted (as secure-json-parse does); anywhere else it is a 400', async t => {
  const { url, pool } = await corpusApp(t)
  const bom = Buffer.from([0xef, 0xbb, 0xbf])
  for (const path of ['/import', '/small']) {
    const res = await post(`${url}${path}`, Buffer.concat([bom, Buffer.from('[1,2,3]')]))
    t.equal(res.status, 200, `${path}: 200`)
    t.same(res.json.items, [1, 2, 3])
    const inside = await post(`${url}${path}`, Buffer.concat([Buffer.from('[1,'), bom, Buffer.from('2]')]))
    t.equal(inside.status, 400, `${path}: a BOM between elements is a 400`)
    t.equal(inside.json.code, 'FST_NEXURE_INVALID_JSON')
  }
  const ndjson = await post(`${url}/import`, Buffer.concat([bom, Buffer.from('{"a":1}\n{"b":2}\n')]), NDJSON_TYPE)
  t.equal(ndjson.status, 200, 'NDJSON with a BOM: 200')
  t.same(ndjson.json.items, [{ a: 1 }, { b: 2 }])
  await stillServing(t, url, pool)
})

t.test('charset=utf-16 (or anything but utf-8) is a 415 before a byte is parsed', async t => {
  const { url, pool } = await corpusApp(t)
  const utf16 = Buffer.from('[1,2]', 'utf16le')
  for (const type of ['application/json; charset=utf-16', 'application/json; charset="UTF-16LE"', 'application/json;charset=latin1', 'application/x-ndjson; charset=utf-16']) {
    for (const path of ['/import', '/small']) {
      const res = await post(`${url}${path}`, utf16, { 'content-type': type })
      t.equal(res.status, 415, `${type} ${path}: 415`)
      t.equal(res.json.code, 'FST_NEXURE_UNSUPPORTED_CHARSET')
    }
  }
  const ok = await post(`${url}/import`, '[1,2]', { 'content-type': 'application/json; charset=UTF-8' })
  t.equal(ok.status, 200, 'charset=UTF-8 is fine')
  await stillServing(t, url, pool)
})

// ---- compression ---------------------------------------------------------------------------

t.test('gzip of gzip: "content-encoding: gzip" is a 400 (the decoded bytes are gzip), "gzip, gzip" decodes', async t => {
  const { url, pool } = await corpusApp(t)
  const rows = Array.from({ length: 5000 }, (_, i) => ({ i }))
  const twice = zlib.gzipSync(zlib.gzipSync(JSON.stringify(rows)))
  for (const path of ['/import', '/small']) {
    const single = await post(`${url}${path}`, twice, { ...JSON_TYPE, 'content-encoding': 'gzip' })
    t.equal(single.status, 400, `${path} gzip: 400`)
    t.equal(single.json.code, 'FST_NEXURE_INVALID_JSON')
    t.match(single.json.message, /byte offset 0/)
    const both = await post(`${url}${path}`, twice, { ...JSON_TYPE, 'content-encoding': 'gzip, gzip' })
    t.equal(both.status, 200, `${path} gzip, gzip: 200`)
    t.equal(both.json.count, rows.length)
  }
  await stillServing(t, url, pool)
})

/** Gzip members of `member` bytes each, concatenated: gunzip reads them as one stream. Cheap to build, huge to inflate. */
function gzipBomb (prefix: string, pattern: string, members: number, memberSize: number): Buffer {
  const middle = Buffer.from(pattern.repeat(Math.ceil(memberSize / pattern.length)).slice(0, memberSize))
  const compressed = zlib.gzipSync(middle, { level: 9 })
  return Buffer.concat([zlib.gzipSync(Buffer.concat([Buffer.from(prefix), middle]), { level: 9 }), ...Array.from({ length: members - 1 }, () => compressed)])
}

t.test('zip bombs are refused with 413 without inflating them', async t => {
  // The limit is small so that the time below is the time to stop, not the time to parse the decoded
  // bytes up to the limit (under coverage on a loaded CI machine, 16 MiB of '0,' items took ~5 s).
  const { url, pool } = await corpusApp(t, { bodyLimit: 2 * MiB })
  // 1 GiB of '0,' items: no single item is large, so only the decoded-size limit can stop it.
  const items = gzipBomb('[', '0,', 64, 16 * MiB)
  const doubled = zlib.gzipSync(items, { level: 9 })
  const brotli = zlib.brotliCompressSync(Buffer.from('['.concat('0,'.repeat(32 * MiB))), { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } })
  const bombs: Array<[string, Buffer, string]> = [
    ['gzip, 1 GiB of small items', items, 'gzip'],
    ['gzip inside gzip', doubled, 'gzip, gzip'],
    ['brotli, 64 MiB', brotli, 'br']
  ]
  for (const [name, bomb, encoding] of bombs) {
    t.ok(bomb.length < 2 * MiB, `${name}: ${(bomb.length / 1024).toFixed(0)} KiB on the wire`)
    const started = performance.now()
    const res = await post(`${url}/import`, Readable.from([bomb]), { ...JSON_TYPE, 'content-encoding': encoding })
    t.equal(res.status, 413, `${name}: 413`)
    t.equal(res.json.code, 'FST_NEXURE_BODY_TOO_LARGE')
    t.match(res.json.message, /decoded body/)
    t.ok(performance.now() - started < 5000, `${name}: refused in ${(performance.now() - started).toFixed(0)} ms`)
  }
  // With the default limits, one huge string inside the bomb is stopped by maxItemSize first.
  const { url: defaults } = await corpusApp(t)
  const strings = gzipBomb('["', '0', 64, 16 * MiB)
  const res = await post(`${defaults}/import`, Readable.from([strings]), { ...JSON_TYPE, 'content-encoding': 'gzip' })
  t.equal(res.status, 413, 'a 1 GiB string bomb with default options: 413')
  t.equal(res.json.code, 'FST_NEXURE_ITEM_TOO_LARGE')
  await stillServing(t, url, pool)
})

// ---- framing: bodies shorter or longer than they say ---------------------------------------

t.test('a body shorter than its Content-Length, then the client goes: the loop rejects with ABORTED, nothing leaks', async t => {
  const { url, pool, failures } = await corpusApp(t)
  const fdsBefore = await openFds()
  const head = (path: string, length: number): string => `POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n\r\n`
  const partial = '[' + '1,'.repeat(20_000)
  for (const how of ['end', 'destroy', 'reset'] as const) {
    const before = failures.length
    const response = await rawExchange(url, async socket => {
      socket.write(head('/import', 10 * MiB) + partial)
      await sleep(100)
      if (how === 'end') socket.end()
      else if (how === 'destroy') socket.destroy()
      else socket.resetAndDestroy()
    }, 1000)
    // A client that only half-closed can still read: Node's parser tells it 400 (body incomplete).
    if (how === 'end') t.match(response, /^(?:|HTTP\/1\.1 400 [^]*)$/, 'end: nothing, or the HTTP parser\'s 400')
    else t.equal(response, '', `${how}: nothing is written back to a client that left`)
    t.ok(await eventually(async () => failures.length > before, 3000), `${how}: the handler's loop ended`)
    t.equal(failures[failures.length - 1]?.code, 'FST_NEXURE_ABORTED', `${how}: with FST_NEXURE_ABORTED`)
  }
  // The buffered path: the parser is reading when the client goes; the handler never runs.
  const handled = failures.length
  await rawExchange(url, async socket => {
    socket.write(head('/small', 100_000) + partial.slice(0, 1000))
    await sleep(100)
    socket.destroy()
  }, 500)
  t.equal(failures.length, handled, 'a small body cut short never reaches the handler')
  t.ok(await eventually(async () => pool.stats.inUse === 0, 3000), 'no pooled slab left in use')
  t.ok(await eventually(async () => (await openFds()) <= fdsBefore, 3000), 'no descriptor left open')
  await stillServing(t, url, pool)
})

t.test('a body longer than its Content-Length: the declared body is answered, the extra bytes get a 400 from the HTTP parser', async t => {
  const { url, pool, failures } = await corpusApp(t)
  const extra = '{"smuggled": "not a request line"}\r\n\r\n'
  const cases: Array<[string, string]> = [['/small', '[1,2]'], ['/import', JSON.stringify(Array.from({ length: 30_000 }, (_, i) => i))]]
  for (const [path, body] of cases) {
    const head = `POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`
    // The extra bytes after the answer: they are parsed as the next request, and refused.
    const later = await rawExchange(url, async socket => {
      socket.write(head + body)
      await eventuallyData(socket, /\r\n\r\n\{"count":\d+/)
      socket.write(extra)
    })
    t.same(later.match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 200', 'HTTP/1.1 400'], `${path}: answered, then the extra bytes are refused`)
    t.match(later, new RegExp(`"count":${JSON.parse(body).length}[,}]`), `${path}: the answer counts exactly the declared body`)
    // In the same packet: Node's parser fails on the extra bytes before the handler answers and
    // closes the connection with its 400 (plain node:http does the same); the body's resources
    // must still be freed and the handler must not see more than the declared body.
    const before = failures.length
    const same = await rawExchange(url, socket => { socket.write(head + body + extra) })
    t.same(same.match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 400'], `${path}: same packet: Node's 400, connection closed`)
    t.ok(failures.slice(before).every(f => f.code === 'FST_NEXURE_ABORTED'), 'the handler saw the declared body or an abort, nothing else')
  }
  await stillServing(t, url, pool)
})

/** Resolves once what the socket has received matches `pattern` (bounded by the test timeout). */
async function eventuallyData (socket: net.Socket, pattern: RegExp): Promise<void> {
  let seen = ''
  for (;;) {
    const [chunk] = await once(socket, 'data') as [Buffer]
    seen += chunk.toString('latin1')
    if (pattern.test(seen)) return
  }
}

// ---- multipart -----------------------------------------------------------------------------

t.test('a multipart body whose boundary never closes: 400 FST_NEXURE_INVALID_MULTIPART, no file left in tempDir', async t => {
  const tempDir = await testTempDir(t, 'nexure-hostile-')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload, { tempDir })
  app.post('/upload', async req => {
    const names: string[] = []
    for await (const file of req.uploads()) names.push(file.filename)
    return { names }
  })
  const url = await listen(app)
  const form = multipartBody([{ name: 'a', value: 'x' }, { name: 'f', filename: 'f.bin', content: { size: 2 * MiB } }])
  // Everything but the closing delimiter (and the CRLF before it).
  const full = form.toBuffer()
  const unclosed = full.subarray(0, full.length - `\r\n--${form.boundary}--\r\n`.length)
  for (const [name, body, headers] of [
    ['with a content-length', unclosed, { 'content-type': form.contentType }],
    ['chunked', Readable.from([unclosed.subarray(0, 1000), unclosed.subarray(1000)]), { 'content-type': form.contentType }]
  ] as const) {
    const res = await post(`${url}/upload`, body, headers)
    t.equal(res.status, 400, `${name}: 400`)
    t.equal(res.json.code, 'FST_NEXURE_INVALID_MULTIPART', `${name}: FST_NEXURE_INVALID_MULTIPART`)
    t.ok(await eventually(async () => (await readdir(tempDir)).length === 0, 3000), `${name}: tempDir is empty`)
  }
  const ok = multipartBody([{ name: 'f', filename: 'ok.txt', content: 'fine' }])
  const res = await post(`${url}/upload`, ok.toBuffer(), { 'content-type': ok.contentType })
  t.equal(res.status, 200, 'the server keeps serving')
  t.same(res.json.names, ['ok.txt'])
})

// ---- slow clients --------------------------------------------------------------------------

/** Headers, then `first`, then one byte every `everyMs` until the server closes; the response text. */
async function trickle (url: string, path: string, first: string, everyMs: number, limitMs: number): Promise<{ response: string, ms: number }> {
  const started = performance.now()
  let timer: NodeJS.Timeout | undefined
  const response = await rawExchange(url, socket => {
    socket.write(`POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\n\r\n${first}`)
    let k = 0
    timer = setInterval(() => { if (!socket.destroyed) socket.write(k++ % 2 === 0 ? '1' : ',') }, everyMs)
  }, limitMs)
  clearInterval(timer)
  return { response, ms: performance.now() - started }
}

t.test('a client that sends one byte a second is ended with 408 and its resources freed', async t => {
  const pool = new BufferPool()
  const app = await bodyApp(t, { pool })
  const failures: Failure[] = []
  const handler = async (req: FastifyRequest) => {
    try {
      for await (const _ of req.batches()) { /* count */ }
    } catch (error) {
      failures.push(error as Failure)
      throw error
    }
    return 'done'
  }
  // Silence between bytes is about a second: idleTimeout alone (1 s) may or may not catch it,
  // so the route also bounds the whole body; bodyTimeout is what ends a steady trickle.
  app.post('/idle', { config: { streamBody: { idleTimeout: 1000, bodyTimeout: 4000 } } }, handler)
  app.post('/silent', { config: { streamBody: { idleTimeout: 1000 } } }, handler)
  const url = await listen(app)
  const fdsBefore = await openFds()

  const trickled = await trickle(url, '/idle', '[', 1000, 8000)
  t.match(trickled.response, /^HTTP\/1\.1 408/, 'one byte a second: 408')
  t.match(trickled.response, /FST_NEXURE_BODY_TIMEOUT/)
  t.ok(trickled.ms < 6500, `ended after ${trickled.ms.toFixed(0)} ms`)

  const silent = await trickle(url, '/silent', '[1,', 60_000, 5000)
  t.match(silent.response, /^HTTP\/1\.1 408/, 'silent after the first bytes: 408')
  t.match(silent.response, /idleTimeout/)
  t.ok(silent.ms < 3000, `ended after ${silent.ms.toFixed(0)} ms`)

  t.same(failures.map(f => f.code), ['FST_NEXURE_BODY_TIMEOUT', 'FST_NEXURE_BODY_TIMEOUT'], 'the handler saw the timeout')
  t.ok(await eventually(async () => pool.stats.inUse === 0, 3000), 'no pooled slab left in use')
  t.ok(await eventually(async () => (await openFds()) <= fdsBefore, 3000), 'no descriptor left open')
  const res = await post(`${url}/silent`, '[1]')
  t.equal(res.status, 200, 'the server keeps serving')
})
