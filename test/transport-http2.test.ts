import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance, type RawServerBase } from 'fastify'
import http2, { type ClientHttp2Session } from 'node:http2'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { Client } from 'undici'
import { BufferPool, streamBody, streamUpload } from '../lib/index.js'
import { h2Request, h2Session, HTTP2_SETUPS, jsonArrayChunks, testTls } from './helpers/http2.js'
import { contentHash, eventually, listTree, multipartBody, openFds, testTempDir } from './helpers/multipart.js'

// Every HTTP/2 setup a Fastify user runs, over one session each: an early answer (an error, a
// `break`, a handler that ignores the body) is a complete response, then that stream alone ends
// (RFC 9113 §8.1), never the session; no connection-specific header is sent.

// One type for the apps of every setup (HTTP/2 cleartext and TLS servers have different types).
type AnyApp = FastifyInstance<RawServerBase, any, any>

const MIB = 1024 * 1024
const JSON_HEADERS = { 'content-type': 'application/json' }

interface Watch { warnings: string[], connectionHeaders: number, responses: number }

/** Connection-specific headers and Node's UnsupportedWarning for them, counted while the test runs. */
function watch (t: Test, app: AnyApp): Watch {
  const seen: Watch = { warnings: [], connectionHeaders: 0, responses: 0 }
  const onWarning = (warning: Error): void => { seen.warnings.push(`${warning.name}: ${warning.message}`) }
  process.on('warning', onWarning)
  t.teardown(() => { process.removeListener('warning', onWarning) })
  // After every onSend hook, app-level and route-level (nexure's are per route): what was sent.
  app.addHook('onResponse', async (_request, reply) => {
    if (reply.getHeader('connection') !== undefined || reply.getHeader('keep-alive') !== undefined) seen.connectionHeaders++
    seen.responses++
  })
  return seen
}

function bodyRoutes (app: AnyApp): void {
  app.post('/count', async request => {
    let count = 0
    for await (const batch of request.batches()) count += batch.length
    return { count }
  })
  app.post('/first-batch', async request => {
    for await (const batch of request.batches({ size: 10 })) return { first: batch.length }
    return { first: 0 }
  })
  app.post('/ignore', async () => ({ ignored: true }))
  app.post('/sha256', async request => {
    const hash = createHash('sha256')
    for await (const chunk of request.bodyStream()) hash.update(chunk as Buffer)
    return { sha256: hash.digest('hex'), bytes: request.streamStats?.bytesReceived }
  })
  // Full duplex: one result line per batch, written while the body still arrives.
  app.post('/duplex', async (request, reply) => {
    async function * lines (): AsyncGenerator<string> {
      let batch = 0
      for await (const items of request.batches({ size: 1000 })) yield JSON.stringify({ batch: ++batch, items: items.length }) + '\n'
      yield JSON.stringify({ done: true, items: request.streamStats?.items }) + '\n'
    }
    return reply.type('application/x-ndjson').send(Readable.from(lines()))
  })
}

async function stillServes (t: Test, session: ClientHttp2Session): Promise<void> {
  const answer = await h2Request(session, { ':path': '/count', ...JSON_HEADERS }, ['[1,2,3]'])
  t.equal(answer.status, 200, 'the same session still serves')
  t.same(JSON.parse(answer.body), { count: 3 })
  t.notOk(session.closed || session.destroyed, 'the session is open')
}

for (const [name, server] of Object.entries(HTTP2_SETUPS)) {
  t.test(`${name}: early answers end their stream, never the session`, async t => {
    const pool = new BufferPool()
    const app = Fastify(server)
    t.teardown(() => app.close())
    await app.register(streamBody, { streamThreshold: 0, bodyLimit: MIB, pool })
    bodyRoutes(app)
    const seen = watch(t, app)
    const url = await app.listen({ port: 0, host: '127.0.0.1' })
    const session = await h2Session(t, url)

    const [valid, refused] = await Promise.all([
      h2Request(session, { ':path': '/count', ...JSON_HEADERS }, jsonArrayChunks(9000)), // ~0.9 MB
      h2Request(session, { ':path': '/count', ...JSON_HEADERS }, jsonArrayChunks(200_000)) // ~20 MB, chunked
    ])
    t.equal(valid.status, 200, 'the long valid body is counted')
    t.same(JSON.parse(valid.body), { count: 9000 })
    t.equal(valid.ended, 'end')
    t.equal(refused.status, 413)
    t.equal(JSON.parse(refused.body).code, 'FST_NEXURE_BODY_TOO_LARGE')
    t.equal(refused.ended, 'reset', 'the refused stream is reset after its response')
    t.equal(refused.rstCode, http2.constants.NGHTTP2_NO_ERROR, 'with NO_ERROR')
    t.ok(refused.sent < 4 * MIB, `the client stopped sending (${refused.sent} of ~20 MB written)`)

    const malformed = await h2Request(session, { ':path': '/count', ...JSON_HEADERS }, jsonArrayChunks(200_000, 5000))
    t.equal(malformed.status, 400)
    t.equal(JSON.parse(malformed.body).code, 'FST_NEXURE_INVALID_JSON')
    t.equal(malformed.ended, 'reset')
    t.ok(malformed.sent < 4 * MIB, `${malformed.sent} bytes written`)

    const early = await h2Request(session, { ':path': '/first-batch', ...JSON_HEADERS }, jsonArrayChunks(200_000))
    t.equal(early.status, 200)
    t.same(JSON.parse(early.body), { first: 10 })
    t.equal(early.ended, 'reset', 'a `break` out of the loop ends the stream too')

    const ignored = await h2Request(session, { ':path': '/ignore', ...JSON_HEADERS }, jsonArrayChunks(200_000))
    t.equal(ignored.status, 200)
    t.not(ignored.ended, 'open', 'a handler that ignores the body ends the stream')

    // Refusals from the headers alone (Fastify marks parser errors `connection: close`).
    const announced = await h2Request(session, { ':path': '/count', ...JSON_HEADERS, 'content-length': String(20 * MIB) }, jsonArrayChunks(200_000))
    t.equal(announced.status, 413)
    t.match(JSON.parse(announced.body).message, /content-length 20971520/)
    t.not(announced.ended, 'open')
    const charset = await h2Request(session, { ':path': '/count', 'content-type': 'application/json; charset=latin1' }, jsonArrayChunks(200_000))
    t.equal(charset.status, 415)
    t.not(charset.ended, 'open')

    // A short unread rest is drained instead: the client gets to finish its body.
    const short = await h2Request(session, { ':path': '/first-batch', ...JSON_HEADERS }, jsonArrayChunks(300))
    t.equal(short.status, 200)
    t.equal(short.ended, 'end')

    await stillServes(t, session)
    t.ok(await eventually(async () => seen.responses === 9), `onResponse ran for every stream (${seen.responses})`)
    t.ok(await eventually(async () => pool.stats.inUse === 0), 'no pooled slab left in use')
    t.same(seen.warnings, [], 'no UnsupportedWarning')
    t.equal(seen.connectionHeaders, 0, 'no connection-specific header')
  })

  t.test(`${name}: bodyStream(), full-duplex replies and client resets`, async t => {
    const pool = new BufferPool()
    const app = Fastify(server)
    t.teardown(() => app.close())
    await app.register(streamBody, { streamThreshold: 0, pool })
    bodyRoutes(app)
    const seen = watch(t, app)
    const url = await app.listen({ port: 0, host: '127.0.0.1' })
    const session = await h2Session(t, url)

    const raw = Buffer.alloc(3 * MIB, 'nexure')
    const hashed = await h2Request(session, { ':path': '/sha256', 'content-type': 'application/octet-stream' }, [raw])
    t.equal(hashed.status, 200)
    t.same(JSON.parse(hashed.body), { sha256: createHash('sha256').update(raw).digest('hex'), bytes: raw.length })

    // Full duplex: the first result line arrives while most of the body is still unsent.
    const lines = 100_000
    const line = JSON.stringify({ note: 'y'.repeat(80) }) + '\n'
    const total = lines * line.length
    const results: Array<{ batch?: number, done?: boolean, items: number }> = []
    let sentAtFirstLine = -1
    await new Promise<void>((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ':path': '/duplex', 'content-type': 'application/x-ndjson' })
      let sent = 0
      let buffered = ''
      stream.setEncoding('utf8')
      stream.on('data', (d: string) => {
        if (sentAtFirstLine < 0) sentAtFirstLine = sent
        buffered += d
        const parts = buffered.split('\n')
        buffered = parts.pop()!
        for (const part of parts) results.push(JSON.parse(part))
      })
      stream.on('end', () => resolve())
      stream.on('error', reject)
      let i = 0
      const write = (): void => {
        while (i < lines) {
          const chunk = line.repeat(500)
          i += 500
          sent += chunk.length
          if (!stream.write(chunk)) { stream.once('drain', write); return }
        }
        stream.end()
      }
      write()
    })
    t.same(results.at(-1), { done: true, items: lines })
    t.equal(results.length, lines / 1000 + 1)
    t.ok(sentAtFirstLine > 0 && sentAtFirstLine < total / 2, `first result line after ${sentAtFirstLine} of ${total} bytes`)

    // A client that resets its stream mid-body: everything for it is freed, the session goes on.
    const reset = session.request({ ':method': 'POST', ':path': '/count', ...JSON_HEADERS })
    reset.on('error', () => {})
    reset.write('[' + '1,'.repeat(MIB / 2))
    t.ok(await eventually(async () => pool.stats.inUse > 0, 2000), 'the server holds a pooled slab for the body when the client resets it')
    reset.close(http2.constants.NGHTTP2_CANCEL)
    t.ok(await eventually(async () => pool.stats.inUse === 0), 'nothing pooled is left after a reset')
    await stillServes(t, session)
    t.same(seen.warnings, [])
  })

  t.test(`${name}: streamUpload over one session`, async t => {
    const tempDir = await testTempDir(t, 'nexure-h2-upload-')
    const app = Fastify(server)
    t.teardown(() => app.close())
    await app.register(streamBody)
    await app.register(streamUpload, { tempDir, hash: 'sha256', maxFileSize: MIB })
    app.post('/upload', async request => {
      const files = []
      for await (const file of request.uploads()) files.push({ name: file.filename, size: file.size, hash: file.hash })
      return { files, fields: request.uploadFields }
    })
    app.post('/count', async request => {
      let count = 0
      for await (const batch of request.batches()) count += batch.length
      return { count }
    })
    app.post('/ignore', async () => 'not now')
    const seen = watch(t, app)
    const url = await app.listen({ port: 0, host: '127.0.0.1' })
    const session = await h2Session(t, url)
    const fdsBefore = await openFds()

    const big = { size: 700_000, seed: 5 }
    const form = multipartBody([{ name: 'title', value: 'h2' }, { name: 'a', filename: 'a.bin', content: big }, { name: 'b', filename: 'b.txt', content: 'hello' }])
    const ok = await h2Request(session, { ':path': '/upload', 'content-type': form.contentType }, form.chunks())
    t.equal(ok.status, 200, ok.body)
    t.same(JSON.parse(ok.body), {
      files: [{ name: 'a.bin', size: big.size, hash: contentHash(big) }, { name: 'b.txt', size: 5, hash: contentHash('hello') }],
      fields: { title: 'h2' }
    })

    const tooBig = multipartBody([{ name: 'a', filename: 'huge.bin', content: { size: 30 * MIB } }])
    const refused = await h2Request(session, { ':path': '/upload', 'content-type': tooBig.contentType }, tooBig.chunks())
    t.equal(refused.status, 413)
    t.equal(JSON.parse(refused.body).code, 'FST_NEXURE_FILE_TOO_LARGE')
    t.equal(refused.ended, 'reset', 'the stream is reset after the 413')
    t.ok(refused.sent < 8 * MIB, `the client stopped sending (${refused.sent} of 30 MiB written)`)

    const ignored = await h2Request(session, { ':path': '/ignore', 'content-type': tooBig.contentType }, tooBig.chunks())
    t.equal(ignored.status, 200)
    t.not(ignored.ended, 'open', 'a handler that never calls uploads() ends the stream')

    // Reset by the client mid-file: the partial file and its directory go.
    const cut = multipartBody([{ name: 'a', filename: 'cut.bin', content: { size: 900_000 } }])
    const reset = session.request({ ':method': 'POST', ':path': '/upload', 'content-type': cut.contentType })
    reset.on('error', () => {})
    const chunks = cut.toBuffer()
    reset.write(chunks.subarray(0, 400_000))
    t.ok(await eventually(async () => (await listTree(tempDir)).length > 0, 2000), 'the file was being written when the client reset the stream')
    reset.close(http2.constants.NGHTTP2_CANCEL)

    t.ok(await eventually(async () => (await listTree(tempDir)).length === 0), 'no file or directory left behind')
    t.ok(await eventually(async () => (await openFds()) <= fdsBefore), 'no descriptor left open')
    await stillServes(t, session)
    t.same(seen.warnings, [])
    t.equal(seen.connectionHeaders, 0)
  })
}

t.test('HTTP/2 TLS with allowHTTP1: HTTP/1.1 clients on the same server still get connection: close', async t => {
  const app = Fastify(HTTP2_SETUPS['HTTP/2 TLS with allowHTTP1'])
  t.teardown(() => app.close())
  await app.register(streamBody, { streamThreshold: 0, bodyLimit: MIB })
  bodyRoutes(app)
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const client = new Client(url, { connect: { ca: testTls.cert }, pipelining: 1 })
  t.teardown(() => client.close())
  const big = Readable.from(jsonArrayChunks(200_000))
  const refused = await client.request({ method: 'POST', path: '/count', headers: JSON_HEADERS, body: big })
  t.equal(refused.statusCode, 413)
  t.equal(refused.headers.connection, 'close')
  await refused.body.dump()
  const next = await client.request({ method: 'POST', path: '/count', headers: JSON_HEADERS, body: '[1,2]' })
  t.equal(next.statusCode, 200)
  t.same(await next.body.json(), { count: 2 })
})
