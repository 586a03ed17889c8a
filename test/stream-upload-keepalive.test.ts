import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { Client } from 'undici'
import { streamUpload, type StreamUploadOptions } from '../lib/index.js'
import { requestHead, sendAfterAnswer, type AfterAnswer } from './helpers/after-answer.js'
import { eventually, listTree, multipartBody, testTempDir, type HasTeardown } from './helpers/multipart.js'

// Uploads follow streamBody's unread-body policy (lib/stream/unread-body.ts): a rest up to
// `drainLimit` is drained and the connection reused; a longer one closes the connection with a
// lingering close, so the client reads the answer, never a reset. Over a real socket (undici).

async function server (t: HasTeardown, options: StreamUploadOptions): Promise<{ app: FastifyInstance, client: Client, connections: () => number }> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload, options)
  app.post('/upload', async request => {
    const saved = await request.saveUploads()
    return { files: saved.files.map(f => f.size) }
  })
  app.get('/ping', async () => 'pong')
  await app.listen({ port: 0, host: '127.0.0.1' })
  let connections = 0
  app.server.on('connection', () => { connections++ })
  const client = new Client(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, { pipelining: 1, keepAliveTimeout: 10_000 })
  t.teardown(() => client.close())
  return { app, client, connections: () => connections }
}

t.test('an early 413 on a large upload reaches the client as a 413, not as a reset', async t => {
  const tempDir = await testTempDir(t, 'nexure-upload-keepalive-')
  const { client } = await server(t, { tempDir, maxFileSize: 1000 })
  // 32 MB streamed as fast as the socket takes it: the answer comes after ~1 KB of the file,
  // while the client is still sending; a server that closed without a linger would reset it.
  const large = multipartBody([{ name: 'f', filename: 'large.bin', content: { size: 32 * 1024 * 1024 } }])
  for (let round = 0; round < 3; round++) {
    const res = await client.request({
      path: '/upload',
      method: 'POST',
      headers: { 'content-type': large.contentType, 'content-length': String(large.length) },
      body: Readable.from(large.chunks())
    })
    t.equal(res.statusCode, 413, `round ${round}: the status is the server's`)
    t.equal(res.headers.connection, 'close')
    const body = await res.body.json() as { code: string, message: string }
    t.equal(body.code, 'FST_NEXURE_FILE_TOO_LARGE')
    t.equal(body.message, 'File "large.bin" exceeds maxFileSize of 1000 bytes')
  }
  t.ok(await eventually(async () => (await listTree(tempDir)).length === 0), 'nothing is left in tempDir')
})

// Half of the body waits for the answer (a raw socket, test/helpers/after-answer.ts), so the
// rest is certainly unread when the answer is decided; then a GET follows on the same connection.
async function answerThenPing (t: Test, drainLimit: number, size: number): Promise<AfterAnswer> {
  const tempDir = await testTempDir(t, 'nexure-upload-keepalive-')
  const { app } = await server(t, { tempDir, maxFileSize: 1000, drainLimit })
  const body = multipartBody([{ name: 'f', filename: 'f.bin', content: { size, chunkSize: 16 * 1024 } }])
  const pieces = [...body.chunks()]
  const rest = pieces.splice(Math.ceil(pieces.length / 2))
  const head = requestHead('POST', '/upload', { 'content-type': body.contentType, 'content-length': body.length })
  const port = (app.server.address() as AddressInfo).port
  const result = await sendAfterAnswer(port, { head, body: pieces, rest }, requestHead('GET', '/ping', {}) + '\r\n')
  t.ok(await eventually(async () => (await listTree(tempDir)).length === 0), 'nothing is left in tempDir')
  return result
}

t.test('drainLimit: 0 closes the connection after any unread rest', async t => {
  const result = await answerThenPing(t, 0, 40_000)
  t.equal(result.first.status, 413)
  t.equal(result.first.headers.connection, 'close', 'with the default drainLimit this 20 KB rest would be drained')
  t.equal(result.error, null, 'no reset reached the client')
  t.equal(result.after, '', 'the GET behind the body is never run')
})

t.test('a drainLimit above the rest drains it and keeps the connection', async t => {
  const result = await answerThenPing(t, 2 * 1024 * 1024, 1_000_000)
  t.equal(result.first.status, 413)
  t.equal(result.first.headers.connection, 'keep-alive', 'a 0.5 MB rest is under this drainLimit')
  t.match(result.after, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\npong$/, 'the GET behind the drained rest is answered on the same connection')
})

t.test('the default drainLimit (64 KiB) closes after a longer rest', async t => {
  const result = await answerThenPing(t, 64 * 1024, 1_000_000)
  t.equal(result.first.headers.connection, 'close')
  t.equal(result.after, '')
})

t.test('drainLimit is checked at registration and is not a route option', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(streamUpload, { drainLimit: -1 }).ready() },
    { code: 'FST_NEXURE_INVALID_OPTION', message: 'Invalid nexure option drainLimit: expected a non-negative integer, got -1' })
  const ok = Fastify()
  t.teardown(() => ok.close())
  await ok.register(streamUpload, { drainLimit: 0 })
  t.throws(() => ok.post('/x', { config: { streamUpload: { drainLimit: 0 } as never } }, async () => 'x'),
    { code: 'FST_NEXURE_INVALID_OPTION', message: /config\.streamUpload\.drainLimit of POST \/x: unknown option/ })
})
