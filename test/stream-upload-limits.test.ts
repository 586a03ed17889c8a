import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { readdir, rm } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { Readable } from 'node:stream'
import { Client } from 'undici'
import { streamUpload, type StreamUploadOptions } from '../lib/index.js'
import { eventually, listTree, multipartBody, type Part, testTempDir, type HasTeardown } from './helpers/multipart.js'

const tempRoot = (t: HasTeardown): Promise<string> => testTempDir(t, 'nexure-upload-limits-')

async function uploadServer (t: HasTeardown, options: StreamUploadOptions): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(streamUpload, options)
  app.post('/upload', async request => {
    const saved = await request.saveUploads()
    return { files: saved.files.map(f => f.size), fields: saved.fields }
  })
  app.get('/ping', async () => 'pong')
  t.teardown(() => app.close())
  return app
}

function inject (app: FastifyInstance, parts: Part[], rawBody?: Buffer) {
  const body = multipartBody(parts)
  return app.inject({ method: 'POST', url: '/upload', headers: { 'content-type': body.contentType }, payload: rawBody ?? body.toBuffer() })
}

async function empty (dir: string): Promise<boolean> {
  return (await listTree(dir)).length === 0
}

t.test('a file over maxFileSize is a 413 naming the file and the limit', async t => {
  const tempDir = await tempRoot(t)
  const app = await uploadServer(t, { tempDir, maxFileSize: 1000 })
  const ok = await inject(app, [{ name: 'f', filename: 'exact.bin', content: { size: 1000 } }])
  t.same(ok.json(), { files: [1000], fields: {} }, 'exactly maxFileSize is accepted')
  const res = await inject(app, [{ name: 'f', filename: 'big.bin', content: { size: 1001 } }])
  t.equal(res.statusCode, 413)
  t.equal(res.json().code, 'FST_NEXURE_FILE_TOO_LARGE')
  t.equal(res.json().message, 'File "big.bin" exceeds maxFileSize of 1000 bytes')
  t.ok(await eventually(() => empty(tempDir)))
})

t.test('the partial file is deleted as soon as the limit is crossed, before the response and the end of the body', async t => {
  const tempDir = await tempRoot(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload, { tempDir, maxFileSize: 100_000, keepFiles: true })
  let afterError: string[] = []
  let firstPath = ''
  app.post('/upload', async request => {
    try {
      for await (const file of request.uploads()) firstPath = file.path
    } catch (err) {
      // keepFiles keeps what the handler received; the partial second file must already be gone.
      afterError = await readdir(path.dirname(firstPath))
      throw err
    }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as net.AddressInfo).port
  const body = multipartBody([
    { name: 'a', filename: 'small', content: 'kept' },
    { name: 'b', filename: 'huge', content: { size: 10_000_000 } }
  ])
  // Send 1 MB of the 10 MB body and then stall: the answer must not wait for the rest.
  const socket = net.connect(port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  socket.write(`POST /upload HTTP/1.1\r\nhost: x\r\ncontent-type: ${body.contentType}\r\ncontent-length: ${body.length}\r\n\r\n`)
  let sent = 0
  for (const chunk of body.chunks()) {
    socket.write(chunk)
    sent += chunk.length
    if (sent > 1_000_000) break
  }
  let response = ''
  socket.setEncoding('latin1')
  socket.on('data', (data: string) => { response += data })
  t.ok(await eventually(async () => response.includes('\r\n\r\n{'), 10_000), 'answered while the body is still incomplete')
  t.match(response, /^HTTP\/1\.1 413 /)
  t.match(response, /connection: close/i, 'the unread rest is not drained: the connection closes')
  t.same(afterError, ['upload-1'], 'the partial file was gone when the error reached the handler')
  socket.destroy()
  t.same(await listTree(tempDir).then(list => list.map(p => path.basename(p)).filter(p => p.startsWith('upload'))), ['upload-1'])
  await rm(path.dirname(firstPath), { recursive: true })
})

t.test('more files than maxFiles, or fields than maxFields, is a 413; nothing stays on disk', async t => {
  const tempDir = await tempRoot(t)
  const app = await uploadServer(t, { tempDir, maxFiles: 2, maxFields: 1 })
  const file = (n: number): Part => ({ name: `f${n}`, filename: `${n}.txt`, content: 'data' })
  t.same((await inject(app, [file(1), file(2), { name: 'x', value: '1' }])).json(), { files: [4, 4], fields: { x: '1' } })
  const files = await inject(app, [file(1), file(2), file(3)])
  t.equal(files.statusCode, 413)
  t.equal(files.json().code, 'FST_NEXURE_TOO_MANY_FILES')
  t.equal(files.json().message, 'Too many files: the limit is 2')
  const fields = await inject(app, [{ name: 'x', value: '1' }, { name: 'y', value: '2' }, file(1)])
  t.equal(fields.statusCode, 413)
  t.equal(fields.json().code, 'FST_NEXURE_TOO_MANY_FIELDS')
  t.equal(fields.json().message, 'Too many fields: the limit is 1')
  t.ok(await eventually(() => empty(tempDir)))
})

t.test('maxFiles: 0 refuses any file', async t => {
  const tempDir = await tempRoot(t)
  const app = await uploadServer(t, { tempDir, maxFiles: 0 })
  t.same((await inject(app, [{ name: 'x', value: 'only a field' }])).json(), { files: [], fields: { x: 'only a field' } })
  t.equal((await inject(app, [{ name: 'f', filename: 'f', content: 'x' }])).json().code, 'FST_NEXURE_TOO_MANY_FILES')
})

t.test('a field over maxFieldSize is a 413 naming the field', async t => {
  const tempDir = await tempRoot(t)
  const app = await uploadServer(t, { tempDir, maxFieldSize: 5 })
  t.same((await inject(app, [{ name: 'ok', value: '12345' }])).json().fields, { ok: '12345' })
  const res = await inject(app, [{ name: 'comment', value: '123456' }])
  t.equal(res.statusCode, 413)
  t.equal(res.json().code, 'FST_NEXURE_FIELD_TOO_LARGE')
  t.equal(res.json().message, 'Field "comment" exceeds maxFieldSize of 5 bytes')
})

t.test('a malformed multipart body is a 400 FST_NEXURE_INVALID_MULTIPART and leaves nothing', async t => {
  const tempDir = await tempRoot(t)
  const app = await uploadServer(t, { tempDir })
  const body = multipartBody([{ name: 'f', filename: 'f', content: { size: 5000 } }])
  const truncated = body.toBuffer().subarray(0, 3000)
  const res = await inject(app, [], truncated)
  t.equal(res.statusCode, 400)
  t.equal(res.json().code, 'FST_NEXURE_INVALID_MULTIPART')
  t.match(res.json().message, /Unexpected end of multipart data.*after 3000 bytes/)
  const noBoundary = await app.inject({ method: 'POST', url: '/upload', headers: { 'content-type': 'multipart/form-data' }, payload: 'x' })
  t.equal(noBoundary.statusCode, 400)
  t.match(noBoundary.json().message, /Boundary not found/)
  t.ok(await eventually(() => empty(tempDir)))
})

t.test('after a rejected upload the next request on the same keep-alive connection succeeds', async t => {
  const tempDir = await tempRoot(t)
  const app = await uploadServer(t, { tempDir, maxFileSize: 1000 })
  await app.listen({ port: 0, host: '127.0.0.1' })
  let connections = 0
  app.server.on('connection', () => { connections++ })
  const client = new Client(`http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}`, { pipelining: 1, keepAliveTimeout: 10_000 })
  t.teardown(() => client.close())

  // A small unread rest (≤ 64 KiB) is drained: the connection is reused.
  const small = multipartBody([{ name: 'f', filename: 'f', content: { size: 40_000 } }])
  const first = await client.request({ path: '/upload', method: 'POST', headers: { 'content-type': small.contentType }, body: small.toBuffer() })
  t.equal(first.statusCode, 413)
  t.equal(first.headers.connection, 'keep-alive')
  await first.body.json()
  const second = await client.request({ path: '/ping', method: 'GET' })
  t.equal(await second.body.text(), 'pong')
  t.equal(connections, 1, 'both requests went over one connection')

  // A large unread rest is not read: the answer closes the connection, the client reconnects.
  // The client holds the rest of the body back until the answer has come, so that it is still
  // unread whatever the machine's load (sent at once, a slow server may have read all 8 MB
  // before its answer, and then keeping the connection is right).
  const large = multipartBody([{ name: 'f', filename: 'f', content: { size: 8_000_000 } }])
  let answered = (): void => {}
  const answer = new Promise<void>(resolve => { answered = resolve })
  async function * heldBack (): AsyncGenerator<Buffer> {
    let sent = 0
    for (const chunk of large.chunks()) {
      yield chunk
      sent += chunk.length
      if (sent >= 256 * 1024) break
    }
    await answer
  }
  const third = await client.request({ path: '/upload', method: 'POST', headers: { 'content-type': large.contentType, 'content-length': String(large.length) }, body: Readable.from(heldBack()) })
  answered()
  t.equal(third.statusCode, 413)
  t.equal(third.headers.connection, 'close')
  await third.body.json()
  const fourth = await client.request({ path: '/ping', method: 'GET' })
  t.equal(await fourth.body.text(), 'pong')
  t.equal(connections, 2)
  t.ok(await eventually(() => empty(tempDir)))
})

t.test('a handler that breaks out of uploads() early: files removed, connection still usable', async t => {
  const tempDir = await tempRoot(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload, { tempDir })
  app.post('/first-only', async request => {
    for await (const file of request.uploads()) return { first: file.filename }
    return { first: null }
  })
  app.get('/ping', async () => 'pong')
  await app.listen({ port: 0, host: '127.0.0.1' })
  let connections = 0
  app.server.on('connection', () => { connections++ })
  const client = new Client(`http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}`, { pipelining: 1 })
  t.teardown(() => client.close())
  const body = multipartBody([{ name: 'a', filename: 'a.txt', content: 'first' }, { name: 'b', filename: 'b.bin', content: { size: 30_000 } }])
  const res = await client.request({ path: '/first-only', method: 'POST', headers: { 'content-type': body.contentType }, body: body.toBuffer() })
  t.same(await res.body.json(), { first: 'a.txt' })
  t.equal(await (await client.request({ path: '/ping', method: 'GET' })).body.text(), 'pong')
  t.equal(connections, 1)
  t.ok(await eventually(() => empty(tempDir)))
})
