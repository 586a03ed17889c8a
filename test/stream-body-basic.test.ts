import t from 'tap'
import Fastify from 'fastify'
import { Readable } from 'node:stream'
import { streamBody } from '../lib/index.js'
import { bodyApp, countingRoute } from './helpers/server.js'

const rows = Array.from({ length: 2500 }, (_, i) => ({ id: i, name: `row ${i} ✓` }))

function chunked (text: string, size = 1000): Readable {
  const buf = Buffer.from(text)
  const chunks: Buffer[] = []
  for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size))
  return Readable.from(chunks)
}

t.test('a small JSON body is parsed into request.body, and batches() slices it', async t => {
  const app = await bodyApp(t, { batchSize: 1000 })
  countingRoute(app)
  const res = await app.inject({ method: 'POST', url: '/import', payload: rows })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.body, 'buffered')
  t.equal(body.count, 2500)
  t.equal(body.batches, 3, 'batches of 1000, 1000, 500')
  t.same(body.items, rows)
})

t.test('a body over streamThreshold is streamed: request.body stays undefined', async t => {
  const app = await bodyApp(t, { streamThreshold: 1024, batchSize: 1000 })
  countingRoute(app)
  const res = await app.inject({ method: 'POST', url: '/import', payload: rows })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.body, 'streamed')
  t.equal(body.count, 2500)
  t.equal(body.batches, 3)
  t.same(body.items, rows)
})

t.test('a chunked body (no content-length) is streamed, whatever its size', async t => {
  const app = await bodyApp(t)
  countingRoute(app)
  const res = await app.inject({ method: 'POST', url: '/import', headers: { 'content-type': 'application/json' }, payload: chunked(JSON.stringify(rows.slice(0, 10)), 7) })
  t.equal(res.statusCode, 200)
  t.equal(res.json().body, 'streamed')
  t.same(res.json().items, rows.slice(0, 10))
})

t.test('schema.body still validates a small body', async t => {
  const app = await bodyApp(t)
  app.post('/strict', { schema: { body: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } } }, async (request) => request.body)
  const ok = await app.inject({ method: 'POST', url: '/strict', payload: { name: 'x' } })
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { name: 'x' })
  const bad = await app.inject({ method: 'POST', url: '/strict', payload: { other: 1 } })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().code, 'FST_ERR_VALIDATION')
})

for (const threshold of [1024 * 1024, 16]) {
  const mode = threshold === 16 ? 'streamed' : 'buffered'
  t.test(`path picks the array to stream (${mode})`, async t => {
    const app = await bodyApp(t, { streamThreshold: threshold })
    app.post('/pick', async (request) => {
      const query = request.query as { path: string }
      const items: unknown[] = []
      for await (const batch of request.batches({ path: query.path, size: 2 })) items.push(batch)
      return items
    })
    const payload = { meta: { n: 3 }, items: [1, 2, 3], data: { rows: [{ a: 1 }, { a: 2 }] } }
    const items = await app.inject({ method: 'POST', url: '/pick?path=items', payload })
    t.same(items.json(), [[1, 2], [3]])
    const rowsRes = await app.inject({ method: 'POST', url: '/pick?path=data.rows', payload })
    t.same(rowsRes.json(), [[{ a: 1 }, { a: 2 }]])
    const absent = await app.inject({ method: 'POST', url: '/pick?path=nope', payload })
    t.equal(absent.statusCode, 400)
    t.equal(absent.json().code, 'FST_NEXURE_PATH_NOT_ARRAY')
    t.match(absent.json().message, /nope/)
    const notArray = await app.inject({ method: 'POST', url: '/pick?path=meta', payload })
    t.equal(notArray.statusCode, 400)
    t.equal(notArray.json().code, 'FST_NEXURE_PATH_NOT_ARRAY')
    t.match(notArray.json().message, /object/)
  })

  t.test(`a top-level value that is not an array is one batch [value] (${mode})`, async t => {
    const app = await bodyApp(t, { streamThreshold: threshold })
    countingRoute(app)
    const res = await app.inject({ method: 'POST', url: '/import', payload: { hello: 'world' } })
    t.same(res.json().items, [{ hello: 'world' }])
    t.equal(res.json().batches, 1)
  })

  t.test(`NDJSON yields one item per line, skipping blank lines, accepting CRLF (${mode})`, async t => {
    const app = await bodyApp(t, { streamThreshold: threshold })
    countingRoute(app)
    for (const type of ['application/x-ndjson', 'application/jsonl', 'application/x-jsonlines']) {
      const res = await app.inject({ method: 'POST', url: '/import', headers: { 'content-type': type }, payload: '{"a":1}\r\n\n  \n[2]\n"three"' })
      t.equal(res.statusCode, 200, type)
      t.same(res.json().items, [{ a: 1 }, [2], 'three'], type)
    }
    const empty = await app.inject({ method: 'POST', url: '/import', headers: { 'content-type': 'application/x-ndjson' }, payload: '' })
    t.equal(empty.statusCode, 200)
    t.same(empty.json(), { count: 0, batches: 0, items: [], body: empty.json().body })
  })
}

t.test('application/*+json is JSON', async t => {
  const app = await bodyApp(t)
  countingRoute(app)
  const res = await app.inject({ method: 'POST', url: '/import', headers: { 'content-type': 'application/vnd.api+json; charset=utf-8' }, payload: '[1,2]' })
  t.equal(res.statusCode, 200)
  t.same(res.json().items, [1, 2])
})

t.test('a charset other than utf-8 is a 415', async t => {
  const app = await bodyApp(t)
  countingRoute(app)
  const res = await app.inject({ method: 'POST', url: '/import', headers: { 'content-type': 'application/json; charset=utf-16' }, payload: '[1]' })
  t.equal(res.statusCode, 415)
  t.equal(res.json().code, 'FST_NEXURE_UNSUPPORTED_CHARSET')
  t.match(res.json().message, /utf-16/)
  const ok = await app.inject({ method: 'POST', url: '/import', headers: { 'content-type': 'application/json; charset=UTF-8' }, payload: '[1]' })
  t.equal(ok.statusCode, 200)
})

t.test('a second call to batches() throws a clear error', async t => {
  const app = await bodyApp(t, { streamThreshold: 0 })
  app.post('/twice', async (request) => {
    request.batches()
    try {
      request.batches()
    } catch (error) {
      return { code: (error as { code: string }).code, message: (error as Error).message }
    }
    return { code: null }
  })
  const res = await app.inject({ method: 'POST', url: '/twice', payload: [1] })
  t.equal(res.json().code, 'FST_NEXURE_BODY_CONSUMED')
  t.match(res.json().message, /request\.batches\(\).*already consumed by request\.batches\(\)/)
})

t.test('batches() on a body nexure does not parse is a 415', async t => {
  const app = await bodyApp(t)
  app.addContentTypeParser('text/csv', { parseAs: 'string' }, (_req, body, done) => done(null, body))
  countingRoute(app)
  const res = await app.inject({ method: 'POST', url: '/import', headers: { 'content-type': 'text/csv' }, payload: 'a,b' })
  t.equal(res.statusCode, 415)
  t.equal(res.json().code, 'FST_NEXURE_UNSUPPORTED_MEDIA_TYPE')
  t.match(res.json().message, /text\/csv/)
})

t.test('the plugin replaces the JSON parser only in the context where it is registered', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(async (scoped) => {
    await scoped.register(streamBody, { streamThreshold: 0 })
    scoped.post('/scoped', async (request) => ({ body: request.body ?? 'streamed' }))
  })
  app.post('/plain', async (request) => ({ body: request.body }))
  const scoped = await app.inject({ method: 'POST', url: '/scoped', payload: [1] })
  t.same(scoped.json(), { body: 'streamed' })
  const plain = await app.inject({ method: 'POST', url: '/plain', payload: [1] })
  t.same(plain.json(), { body: [1] }, "Fastify's own parser outside the scope")
})

t.test('a batch size per call wins over the plugin default', async t => {
  const app = await bodyApp(t, { streamThreshold: 0, batchSize: 1000 })
  app.post('/sizes', async (request) => {
    const sizes: number[] = []
    for await (const batch of request.batches({ size: 4 })) sizes.push(batch.length)
    return sizes
  })
  const res = await app.inject({ method: 'POST', url: '/sizes', payload: Array.from({ length: 10 }, (_, i) => i) })
  t.same(res.json(), [4, 4, 2])
})
