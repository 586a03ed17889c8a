// batches() with wildcard paths and entries, through the plugin: a real listening server fed in
// small chunks, and the same bodies buffered (under streamThreshold). Both give the reference's
// items (JSON.parse of the whole body) and, for a body at fault, the same error: code, status,
// message and byte offset, whichever side of the threshold it falls.

import t from 'tap'
import { Readable } from 'node:stream'
import { request as undiciRequest } from 'undici'
import type { FastifyInstance } from 'fastify'
import { bodyApp, listen } from './helpers/server.js'
import { referenceJson } from './helpers/reference.js'
import { BufferPool } from '../lib/index.js'

interface Answer { status: number, items?: unknown[], sizes?: number[], body?: string, code?: string, message?: string }

function pickRoute (app: FastifyInstance): void {
  app.post('/pick', async (request) => {
    const query = request.query as { path?: string, entries?: string, size?: string }
    const options = { path: query.path, entries: query.entries === '1', size: query.size === undefined ? undefined : Number(query.size) }
    const items: unknown[] = []
    const sizes: number[] = []
    for await (const batch of request.batches(options)) {
      sizes.push(batch.length)
      items.push(...batch)
    }
    return { items, sizes, body: request.body === undefined ? 'streamed' : 'buffered' }
  })
}

function url (base: string, path: string | undefined, entries: boolean, size?: number): string {
  const query = new URLSearchParams()
  if (path !== undefined) query.set('path', path)
  if (entries) query.set('entries', '1')
  if (size !== undefined) query.set('size', String(size))
  return `${base}/pick?${query.toString()}`
}

/** Sends `body` in chunks of `chunk` bytes, chunked (so streamed), or whole with a Content-Length. */
async function send (target: string, body: Buffer, chunk: number | null): Promise<Answer> {
  async function * pieces (): AsyncGenerator<Buffer> {
    for (let i = 0; i < body.length; i += chunk!) {
      yield body.subarray(i, i + chunk!)
      await new Promise(resolve => setImmediate(resolve))
    }
  }
  const res = await undiciRequest(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chunk === null ? body : Readable.from(pieces()) })
  const json = await res.body.json() as Answer
  return { ...json, status: res.statusCode }
}

t.test('a real socket, small chunks: wildcard and entries give the reference items, streamed and buffered', async t => {
  const pool = new BufferPool({ slabSize: 64 })
  const app = await bodyApp(t, { streamThreshold: 4096, batchSize: 3, pool })
  pickRoute(app)
  const base = await listen(app)
  const rows = (n: number, tag: string): unknown[] => Array.from({ length: n }, (_, i) => ({ id: i, tag, name: `é-${tag}-${i}`, nested: { a: [i, 'x'] } }))
  const big = { meta: { n: 1 }, data: { first: { rows: rows(40, 'f') }, second: { x: 1, rows: [] }, third: { rows: rows(25, 't') } }, tail: [1, 2] }
  const cases: Array<{ name: string, value: unknown, path?: string, entries?: boolean }> = [
    { name: 'data.*.rows over an object', value: big, path: 'data.*.rows' },
    { name: '*.items over an array', value: [{ items: rows(30, 'a') }, { items: [] }, { items: rows(12, 'b') }], path: '*.items' },
    { name: 'groups.*', value: { groups: { a: rows(20, 'a'), b: rows(20, 'b') } }, path: 'groups.*' },
    { name: 'entries at the top', value: Object.fromEntries(rows(50, 'e').map((row, i) => [`user-${i}`, row])), entries: true },
    { name: 'entries at users', value: { count: 2, users: { alice: rows(20, 'a'), bob: { age: 3 } } }, path: 'users', entries: true },
    { name: 'entries of every object at g.*', value: { g: [{ a: 1, b: rows(30, 'b') }, {}, { c: 'é' }] }, path: 'g.*', entries: true },
    { name: 'a * that matches nothing', value: { data: {} }, path: 'data.*.rows' }
  ]
  for (const { name, value, path, entries = false } of cases) {
    const text = JSON.stringify(value)
    const reference = referenceJson(Buffer.from(text), path, {}, entries)
    t.ok(reference.items !== undefined, `${name}: the reference selects`)
    for (const [label, body, chunk] of [['streamed in 16-byte chunks', Buffer.from(text), 16], ['buffered', Buffer.from(text), null]] as const) {
      const answer = await send(url(base, path, entries), body, chunk)
      t.equal(answer.status, 200, `${name}, ${label}: 200`)
      t.equal(answer.body, label === 'buffered' ? 'buffered' : 'streamed', `${name}: ${label}`)
      t.same(answer.items, reference.items, `${name}, ${label}: the reference items`)
      t.ok(answer.sizes!.every((size, k) => size === 3 || k === answer.sizes!.length - 1), `${name}, ${label}: batches of 3, the last one shorter`)
    }
  }
  t.equal(pool.stats.inUse, 0, 'every pooled buffer released')
})

t.test('the same body at fault gets the same error, code and message, streamed or buffered', async t => {
  const streamed = await bodyApp(t, { streamThreshold: 0 })
  const buffered = await bodyApp(t, { streamThreshold: 1024 * 1024 })
  pickRoute(streamed)
  pickRoute(buffered)
  const cases: Array<[string, string | undefined, boolean, string, number]> = [
    // body, path, entries, expected code, status
    ['{"data":{"a":[1],"b":3}}', 'data.*', false, 'FST_NEXURE_PATH_NOT_ARRAY', 400],
    ['{"data":[{"rows":[1]},{"other":1}]}', 'data.*.rows', false, 'FST_NEXURE_PATH_NOT_ARRAY', 400],
    ['{"data":{"a":[1],"a":[2]}}', 'data.*', false, 'FST_NEXURE_INVALID_JSON', 400],
    ['[1,2]', undefined, true, 'FST_NEXURE_PATH_NOT_OBJECT', 400],
    ['{"users":[1]}', 'users', true, 'FST_NEXURE_PATH_NOT_OBJECT', 400],
    ['{"a":1,"b":2,"a":3}', undefined, true, 'FST_NEXURE_INVALID_JSON', 400],
    // Plain paths: the buffered side walks the parsed value, and asks the bytes where it fails.
    ['{"other":[1]}', 'items', false, 'FST_NEXURE_PATH_NOT_ARRAY', 400],
    ['{"data":{"x":1}}', 'data.rows', false, 'FST_NEXURE_PATH_NOT_ARRAY', 400],
    ['{"a":[{"b":[1]}]}', 'a.1.b', false, 'FST_NEXURE_PATH_NOT_ARRAY', 400],
    ['{"items":"x"}', 'items', false, 'FST_NEXURE_PATH_NOT_ARRAY', 400],
    ['[1,2]', 'items', false, 'FST_NEXURE_PATH_NOT_ARRAY', 400],
    // A key given twice where a * or entries takes every key: refused buffered too.
    ['{"data":{"x":{"a":[1]},"x":{"a":[2]}}}', 'data.*.a', false, 'FST_NEXURE_INVALID_JSON', 400]
  ]
  for (const [text, path, entries, code, status] of cases) {
    const answers: Answer[] = []
    for (const app of [streamed, buffered]) {
      const res = await app.inject({ method: 'POST', url: url('', path, entries), headers: { 'content-type': 'application/json' }, payload: text })
      answers.push({ ...res.json(), status: res.statusCode })
    }
    const [fromStream, fromBuffer] = answers as [Answer, Answer]
    t.equal(fromStream.code, code, `${text} ${path ?? ''}${entries ? ' entries' : ''}: ${code}`)
    t.equal(fromStream.status, status)
    t.match(fromStream.message, /at byte offset \d+/, 'the message says where')
    t.same([fromBuffer.status, fromBuffer.code, fromBuffer.message], [fromStream.status, fromStream.code, fromStream.message], `${text}: the same error buffered`)
  }
  // A fault of the JSON itself in a small body is found by the parser, before the handler names
  // its path: the same refusal, located for a reader of the whole body.
  for (const text of ['{"a":1,"__proto__":{"x":1}}', '{"a":{"b":{"constructor":{"prototype":1}}}}', '{"a":1,"b":[1,}']) {
    const codes: unknown[] = []
    for (const app of [streamed, buffered]) {
      const res = await app.inject({ method: 'POST', url: url('', undefined, true), headers: { 'content-type': 'application/json' }, payload: text })
      codes.push([res.statusCode, res.json().code])
    }
    t.same(codes[1], codes[0], `${text}: the same refusal buffered (${String(codes[0])})`)
  }
})

t.test('a plain path on a small body: a key given twice keeps JSON.parse\'s last value (documented)', async t => {
  const streamed = await bodyApp(t, { streamThreshold: 0 })
  const buffered = await bodyApp(t)
  pickRoute(streamed)
  pickRoute(buffered)
  const send = async (app: FastifyInstance) => (await app.inject({ method: 'POST', url: url('', 'items', false), headers: { 'content-type': 'application/json' }, payload: '{"items":[1],"items":[2]}' })).json()
  t.same((await send(buffered)).items, [2], 'buffered: the value parsed whole')
  t.equal((await send(streamed)).code, 'FST_NEXURE_INVALID_JSON', 'streamed: a 400')
})

t.test('entries and * on NDJSON are a 415; a wrong entries argument is the application\'s 500', async t => {
  const app = await bodyApp(t)
  pickRoute(app)
  app.post('/bad', async (request) => {
    for await (const batch of request.batches({ entries: 'yes' } as never)) return batch
    return null
  })
  const ndjson = await app.inject({ method: 'POST', url: url('', undefined, true), headers: { 'content-type': 'application/x-ndjson' }, payload: '{"a":1}\n' })
  t.equal(ndjson.statusCode, 415)
  t.match(ndjson.json().message, /entries: true/)
  const bad = await app.inject({ method: 'POST', url: '/bad', payload: {} })
  t.equal(bad.statusCode, 500)
  t.equal(bad.json().code, 'FST_NEXURE_INVALID_ARGUMENT')
  t.match(bad.json().message, /request\.batches\(\{ entries \}\).*expected a boolean, got "yes"/)
  const literal = await app.inject({ method: 'POST', url: url('', 'a.*', false), payload: { a: { '*': [1], b: [2] } } })
  t.same(literal.json().items, [1, 2], 'a * segment is a wildcard, not the key "*"')
})

t.test('a real socket: the short last batch of the array at path reaches the handler before the rest of the body is sent', async t => {
  const app = await bodyApp(t, { streamThreshold: 0, batchSize: 4 })
  let gotBatch: (sizes: number[]) => void = () => {}
  const batchSeen = new Promise<number[]>(resolve => { gotBatch = resolve })
  app.post('/early', async (request) => {
    const sizes: number[] = []
    for await (const batch of request.batches({ path: 'items' })) {
      sizes.push(batch.length)
      if (sizes.length === 2) gotBatch([...sizes])
    }
    return { sizes }
  })
  const base = await listen(app)
  let sentTail = false
  async function * pieces (): AsyncGenerator<Buffer> {
    yield Buffer.from('{"items":[1,2,3,4,5,6],"tail":')
    // Nothing more is sent until the handler has had the array's last batch.
    t.same(await batchSeen, [4, 2], 'both batches out while the body is still open')
    sentTail = true
    yield Buffer.from('"x"}')
  }
  const res = await undiciRequest(`${base}/early`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Readable.from(pieces()) })
  t.equal(res.statusCode, 200)
  t.same(await res.body.json(), { sizes: [4, 2] })
  t.ok(sentTail)
})
