import t from 'tap'
import Fastify from 'fastify'
import { Client } from 'undici'
import { streamBody, streamUpload } from '../lib/index.js'
import { multipartBody, testTempDir } from './helpers/multipart.js'
import { bodyApp, listen } from './helpers/server.js'

// The content type is the client's choice: one that does not fit what the handler asked for is
// the client's mistake, a 415 that names what came and what the route expects. The arguments
// of the call are the application's: a wrong one is a 500 that says it is the application's.

const ndjson = { 'content-type': 'application/x-ndjson' }

for (const threshold of [1024 * 1024, 0]) {
  const mode = threshold === 0 ? 'streamed' : 'buffered'

  t.test(`batches({ path }) on an NDJSON body is a 415 naming both (${mode})`, async t => {
    const app = await bodyApp(t, { streamThreshold: threshold })
    app.post('/import', async request => {
      let n = 0
      for await (const batch of request.batches({ path: 'items' })) n += batch.length
      return { n }
    })
    const res = await app.inject({ method: 'POST', url: '/import', headers: ndjson, payload: '{"a":1}\n{"a":2}\n' })
    t.equal(res.statusCode, 415)
    t.equal(res.json().code, 'FST_NEXURE_UNSUPPORTED_MEDIA_TYPE')
    t.equal(res.json().message, 'Unsupported media type "application/x-ndjson": expected a JSON body (application/json) with an array at "items" (this route calls batches({ path: \'items\' }); NDJSON and JSON sequences have no paths)')
    const json = await app.inject({ method: 'POST', url: '/import', payload: { items: [1, 2, 3] } })
    t.same(json.json(), { n: 3 }, 'the same route serves the JSON it expects')
  })

  t.test(`a refused call does not take the body: the handler may read it another way (${mode})`, async t => {
    const app = await bodyApp(t, { streamThreshold: threshold })
    app.post('/either', async request => {
      let batches
      try {
        batches = request.batches({ path: 'items' })
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode !== 415) throw error
        batches = request.batches()
      }
      let n = 0
      for await (const batch of batches) n += batch.length
      return { n }
    })
    const res = await app.inject({ method: 'POST', url: '/either', headers: ndjson, payload: '1\n2\n3\n' })
    t.same(res.json(), { n: 3 })
  })
}

t.test('batches() on a raw body names the type and what batches() reads', async t => {
  const app = await bodyApp(t)
  app.post('/raw', async request => { for await (const batch of request.batches()) return batch; return [] })
  const res = await app.inject({ method: 'POST', url: '/raw', headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from('[1]') })
  t.equal(res.statusCode, 415)
  t.equal(res.json().message, 'Unsupported media type "application/octet-stream": expected a JSON, NDJSON or JSON-sequence body (application/json, application/x-ndjson, application/json-seq)')
})

t.test('with both plugins, batches() on a multipart body and uploads() on a JSON body are 415s', async t => {
  const tempDir = await testTempDir(t, 'nexure-media-types-')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamBody, { streamThreshold: 0 })
  await app.register(streamUpload, { tempDir })
  app.post('/rows', async request => {
    let n = 0
    for await (const batch of request.batches()) n += batch.length
    return { n }
  })
  app.post('/files', async request => {
    let n = 0
    for await (const file of request.uploads()) n += file.size
    return { n }
  })
  const form = multipartBody([{ name: 'f', filename: 'a.csv', content: 'a,b' }])
  const rows = await app.inject({ method: 'POST', url: '/rows', headers: { 'content-type': form.contentType }, payload: form.toBuffer() })
  t.equal(rows.statusCode, 415)
  t.match(rows.json().message, /^Unsupported media type "multipart\/form-data; boundary=[^"]+": expected a JSON, NDJSON or JSON-sequence body/)
  const files = await app.inject({ method: 'POST', url: '/files', payload: [1, 2] })
  t.equal(files.statusCode, 415)
  t.equal(files.json().message, 'Unsupported media type "application/json": expected multipart/form-data (a form upload, e.g. curl -F)')
})

t.test('an invalid argument from the handler is a 500 that says it is the application\'s mistake', async t => {
  const app = await bodyApp(t)
  app.post('/sized', async request => {
    const { size, path } = request.query as { size?: string, path?: string }
    let n = 0
    for await (const batch of request.batches({ size: size === undefined ? undefined : Number(size), path })) n += batch.length
    return { n }
  })
  const zero = await app.inject({ method: 'POST', url: '/sized?size=0', payload: [1] })
  t.equal(zero.statusCode, 500)
  t.equal(zero.json().code, 'FST_NEXURE_INVALID_ARGUMENT')
  t.equal(zero.json().message, 'Invalid argument to request.batches({ size }) in the route handler: expected a positive integer, got 0 (a mistake in the application, not in the request)')
  const notNumber = await app.inject({ method: 'POST', url: '/sized?size=ten', payload: [1] })
  t.match(notNumber.json(), { code: 'FST_NEXURE_INVALID_ARGUMENT', message: /got NaN/ })
  const path = await app.inject({ method: 'POST', url: '/sized?path=a..b', payload: { a: [] } })
  t.equal(path.statusCode, 500)
  t.match(path.json(), { code: 'FST_NEXURE_INVALID_ARGUMENT', message: /batches\(\{ path \}\) in the route handler: Invalid path "a\.\.b": empty segment/ })
  // Whatever the body: the argument is checked first, so the answer does not depend on the client.
  const ndjsonBody = await app.inject({ method: 'POST', url: '/sized?size=0', headers: ndjson, payload: '1\n' })
  t.equal(ndjsonBody.json().code, 'FST_NEXURE_INVALID_ARGUMENT')
  const ok = await app.inject({ method: 'POST', url: '/sized?size=2', payload: [1, 2, 3] })
  t.same(ok.json(), { n: 3 })
})

t.test('a 415 for a large streamed NDJSON body leaves the server serving on a fresh or reused connection', async t => {
  const app = await bodyApp(t)
  app.post('/import', async request => {
    let n = 0
    for await (const batch of request.batches({ path: 'items' })) n += batch.length
    return { n }
  })
  const url = await listen(app)
  const client = new Client(url, { pipelining: 1 })
  t.teardown(() => client.close())
  const lines = '{"a":1}\n'.repeat(300_000) // 2.4 MB: streamed, and too long to drain
  const refused = await client.request({ method: 'POST', path: '/import', headers: ndjson, body: lines })
  t.equal(refused.statusCode, 415)
  t.equal(refused.headers.connection, 'close', 'the unread rest closes the connection')
  t.equal((await refused.body.json() as { code: string }).code, 'FST_NEXURE_UNSUPPORTED_MEDIA_TYPE')
  const next = await client.request({ method: 'POST', path: '/import', headers: { 'content-type': 'application/json' }, body: '{"items":[1,2]}' })
  t.same(await next.body.json(), { n: 2 })
})
