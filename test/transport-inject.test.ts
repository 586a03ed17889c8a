import t from 'tap'
import Fastify from 'fastify'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { createGzip } from 'node:zlib'
import { streamBody, streamUpload } from '../lib/index.js'
import { bodyApp } from './helpers/server.js'
import { contentHash, listTree, multipartBody, patternChunks, testTempDir } from './helpers/multipart.js'

// inject() with a Readable payload: how most Fastify users unit-test their routes. The stream
// is sent without Content-Length (like a chunked body), so nexure streams it exactly as it
// would a body from a socket: batches, limits and errors are the same.

/** A JSON array of `count` items, produced chunk by chunk; garbage after item `bad`. */
function jsonArray (count: number, bad = -1): Readable {
  return Readable.from((function * () {
    yield '['
    for (let i = 0; i < count; i += 500) {
      const items = []
      for (let j = i; j < Math.min(count, i + 500); j++) items.push(j === bad ? '{"id":oops}' : JSON.stringify({ id: j, name: `item ${j}` }))
      yield (i === 0 ? '' : ',') + items.join(',')
    }
    yield ']'
  })(), { objectMode: false })
}

t.test('batches(): a streamed payload is counted, limited and checked like a socket body', async t => {
  const app = await bodyApp(t, { bodyLimit: 2 * 1024 * 1024, batchSize: 100 })
  app.post('/import', async request => {
    let count = 0
    let batches = 0
    let last: unknown
    for await (const batch of request.batches<{ id: number }>()) {
      batches++
      count += batch.length
      last = batch.at(-1)
    }
    return { count, batches, last, streamed: request.body === undefined, bytes: request.streamStats?.bytesReceived }
  })
  app.post('/ndjson', async request => {
    let count = 0
    for await (const batch of request.batches()) count += batch.length
    return { count }
  })
  app.post('/strict', { config: { streamBody: { itemSchema: { type: 'object', required: ['id'], properties: { id: { type: 'integer', maximum: 999 } } } } } }, async request => {
    let count = 0
    for await (const batch of request.batches()) count += batch.length
    return { count }
  })
  app.post('/first', async request => {
    for await (const batch of request.batches({ size: 3 })) return { first: batch }
    return { first: [] }
  })
  const headers = { 'content-type': 'application/json' }

  const ok = await app.inject({ method: 'POST', url: '/import', headers, payload: jsonArray(20_000) })
  t.equal(ok.statusCode, 200, ok.body)
  t.match(ok.json(), { count: 20_000, batches: 200, last: { id: 19_999 }, streamed: true })
  t.ok(ok.json().bytes > 500_000, 'counted as it streamed')

  const tooLarge = await app.inject({ method: 'POST', url: '/import', headers, payload: jsonArray(200_000) })
  t.equal(tooLarge.statusCode, 413)
  t.equal(tooLarge.json().code, 'FST_NEXURE_BODY_TOO_LARGE')
  t.match(tooLarge.json().message, /exceeds the limit of 2097152 bytes/)

  const malformed = await app.inject({ method: 'POST', url: '/import', headers, payload: jsonArray(5000, 1234) })
  t.equal(malformed.statusCode, 400)
  t.equal(malformed.json().code, 'FST_NEXURE_INVALID_JSON')
  t.match(malformed.json().message, /byte offset \d+/, 'the message says where')

  const invalidItem = await app.inject({ method: 'POST', url: '/strict', headers, payload: jsonArray(5000) })
  t.equal(invalidItem.statusCode, 400)
  t.equal(invalidItem.json().code, 'FST_NEXURE_INVALID_ITEM')
  t.match(invalidItem.json().message, /^Item 1000 is invalid/)

  const early = await app.inject({ method: 'POST', url: '/first', headers, payload: jsonArray(100_000) })
  t.equal(early.statusCode, 200, 'a handler that stops early still answers')
  t.same(early.json(), { first: [{ id: 0, name: 'item 0' }, { id: 1, name: 'item 1' }, { id: 2, name: 'item 2' }] })

  const lines = Readable.from((function * () { for (let i = 0; i < 3000; i++) yield `{"n":${i}}\n` })(), { objectMode: false })
  const ndjson = await app.inject({ method: 'POST', url: '/ndjson', headers: { 'content-type': 'application/x-ndjson' }, payload: lines })
  t.same(ndjson.json(), { count: 3000 })

  const gzipped = jsonArray(20_000).pipe(createGzip())
  const decoded = await app.inject({ method: 'POST', url: '/import', headers: { ...headers, 'content-encoding': 'gzip' }, payload: gzipped })
  t.equal(decoded.statusCode, 200)
  t.equal(decoded.json().count, 20_000)

  // A payload stream that fails: light-my-request rejects inject() with the stream's error.
  const broken = new Readable({ read () {} })
  broken.push('[1,2,')
  setImmediate(() => broken.destroy(new Error('the producer failed')))
  await t.rejects(app.inject({ method: 'POST', url: '/import', headers, payload: broken }), /the producer failed/)
  const after = await app.inject({ method: 'POST', url: '/import', headers, payload: jsonArray(10) })
  t.equal(after.json().count, 10, 'the app serves the next injected request')
})

t.test('bodyStream(): the bytes of a streamed payload, decoded and limited', async t => {
  const app = await bodyApp(t, { bodyLimit: 4 * 1024 * 1024 })
  app.post('/sha256', async request => {
    const hash = createHash('sha256')
    for await (const chunk of request.bodyStream()) hash.update(chunk as Buffer)
    return { sha256: hash.digest('hex'), bytes: request.streamStats?.bytesReceived }
  })
  const headers = { 'content-type': 'application/octet-stream' }
  const content = { size: 3 * 1024 * 1024, seed: 9 }

  const ok = await app.inject({ method: 'POST', url: '/sha256', headers, payload: Readable.from(patternChunks(content)) })
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { sha256: contentHash(content), bytes: content.size })

  const tooLarge = await app.inject({ method: 'POST', url: '/sha256', headers, payload: Readable.from(patternChunks({ size: 6 * 1024 * 1024 })) })
  t.equal(tooLarge.statusCode, 413)
  t.equal(tooLarge.json().code, 'FST_NEXURE_BODY_TOO_LARGE')

  const notJson = await app.inject({ method: 'POST', url: '/sha256', headers: { 'content-type': 'application/json', 'content-encoding': 'compress' }, payload: Readable.from(['[]']) })
  t.equal(notJson.statusCode, 415)
  t.equal(notJson.json().code, 'FST_NEXURE_UNSUPPORTED_ENCODING')
})

t.test('uploads(): a streamed multipart payload, with limits, and nothing left on disk', async t => {
  const tempDir = await testTempDir(t, 'nexure-inject-upload-')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamBody)
  await app.register(streamUpload, { tempDir, hash: 'sha256', maxFileSize: 2 * 1024 * 1024 })
  app.post('/upload', async request => {
    const files = []
    for await (const file of request.uploads()) files.push({ name: file.filename, size: file.size, hash: file.hash })
    return { files, fields: request.uploadFields }
  })
  const big = { size: 1_500_000, seed: 4 }
  const form = multipartBody([{ name: 'title', value: 'inject' }, { name: 'a', filename: 'a.bin', content: big }, { name: 'b', filename: 'b.txt', content: 'hello' }])
  const ok = await app.inject({ method: 'POST', url: '/upload', headers: { 'content-type': form.contentType }, payload: Readable.from(form.chunks()) })
  t.equal(ok.statusCode, 200, ok.body)
  t.same(ok.json(), {
    files: [{ name: 'a.bin', size: big.size, hash: contentHash(big) }, { name: 'b.txt', size: 5, hash: contentHash('hello') }],
    fields: { title: 'inject' }
  })

  const tooBig = multipartBody([{ name: 'a', filename: 'huge.bin', content: { size: 5 * 1024 * 1024 } }])
  const refused = await app.inject({ method: 'POST', url: '/upload', headers: { 'content-type': tooBig.contentType }, payload: Readable.from(tooBig.chunks()) })
  t.equal(refused.statusCode, 413)
  t.equal(refused.json().code, 'FST_NEXURE_FILE_TOO_LARGE')

  const wrongType = await app.inject({ method: 'POST', url: '/upload', headers: { 'content-type': 'application/json' }, payload: jsonArray(10) })
  t.equal(wrongType.statusCode, 415)
  t.equal(wrongType.json().code, 'FST_NEXURE_UNSUPPORTED_MEDIA_TYPE')

  t.same(await listTree(tempDir), [], 'no file or directory left behind')
})
