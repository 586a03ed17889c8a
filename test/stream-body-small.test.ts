import t from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { Readable, Transform, Writable } from 'node:stream'
import { BufferPool } from '../lib/index.js'
import { bodyApp, listen } from './helpers/server.js'

// The small-body path: a body under streamThreshold, identity-encoded, with no user transforms,
// is read straight off the socket. It keeps every guarantee the streaming pipeline gives, and
// routes pay only for the hooks they need.

/** Opens a raw connection, sends `request`, and resolves with everything the server sent until it closed. */
async function raw (url: string, request: string, then?: (socket: net.Socket) => void): Promise<string> {
  const { port, hostname } = new URL(url)
  const socket = net.connect(Number(port), hostname)
  await once(socket, 'connect')
  let response = ''
  socket.on('data', chunk => { response += chunk.toString() })
  socket.on('error', () => {})
  socket.write(request)
  then?.(socket)
  await once(socket, 'close')
  return response
}

const json = (length: number, head: string): string =>
  `POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n\r\n${head}`

t.test('hooks go only to routes that can take a body, and preParsing only where transforms need the reply', async t => {
  const app = await bodyApp(t)
  app.get('/ping', async () => 'pong')
  app.post('/plain', async () => 'ok')
  app.route({ method: ['GET', 'PUT'], url: '/both', handler: async () => 'ok' })
  app.post('/transformed', { config: { streamBody: { transforms: [() => new Transform({ transform (chunk, _e, cb) { cb(null, chunk) } })] } } }, async () => 'ok')
  await app.ready()
  const routes = app.printRoutes({ includeHooks: true, commonPrefix: false })
  const block = (route: string): string => {
    const start = routes.indexOf(`${route} (`)
    const next = routes.slice(start + 1).search(/\n\S*── \//)
    return next === -1 ? routes.slice(start) : routes.slice(start, start + 1 + next)
  }
  t.notMatch(block('/ping'), /planUnreadBody|releaseBody|rememberReply/, 'GET (and its HEAD) get no nexure hook')
  t.match(block('/plain'), /\(onSend\) \["planUnreadBody\(\)"\]/)
  t.notMatch(block('/plain'), /\(onResponse\)/, 'no onResponse hook: the release is armed per request, for an unread body only')
  t.notMatch(block('/plain'), /rememberReply/, 'no preParsing hook without transforms')
  t.match(block('/both'), /planUnreadBody/, 'a route that also takes PUT gets them')
  t.match(block('/transformed'), /\(preParsing\) \["rememberReply\(\)"\]/)
})

t.test('a route\'s own hooks stay, and run with nexure\'s', async t => {
  const app = await bodyApp(t, { streamThreshold: 10 })
  const seen: string[] = []
  app.post('/mine', {
    onSend: async (_request, _reply, payload) => { seen.push('onSend'); return payload },
    onResponse: [async () => { seen.push('onResponse') }]
  }, async () => 'early')
  const url = await listen(app)
  const body = JSON.stringify(Array.from({ length: 50_000 }, (_, i) => i))
  const res = await fetch(`${url}/mine`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  t.equal(await res.text(), 'early')
  t.equal(res.headers.get('connection'), 'close', 'the unread rest is over drainLimit: nexure\'s onSend ran')
  await new Promise(resolve => setTimeout(resolve, 50))
  t.same(seen, ['onSend', 'onResponse'])
})

t.test('a small body slower than bodyTimeout is a 408 that closes the connection', async t => {
  const app = await bodyApp(t, { bodyTimeout: 300, idleTimeout: 0 })
  let runs = 0
  app.post('/echo', async (request) => { runs++; return request.body })
  const url = await listen(app)
  const started = performance.now()
  const response = await raw(url, json(100, '[1,'), socket => {
    const timer = setInterval(() => { if (!socket.destroyed) socket.write(' ') }, 50)
    socket.once('close', () => clearInterval(timer))
  })
  t.match(response, /^HTTP\/1\.1 408/)
  t.match(response, /FST_NEXURE_BODY_TIMEOUT/)
  t.match(response, /the body took longer than 300 ms \(bodyTimeout\); \d+ bytes arrived/)
  t.match(response, /connection: close/i, 'the rest of the body is not waited for')
  t.equal(runs, 0)
  t.ok(performance.now() - started < 3000)
  const ok = await fetch(`${url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1]' })
  t.same(await ok.json(), [1], 'the server goes on serving')
})

t.test('a client that goes away in the middle of a small body runs no handler and leaves nothing behind', async t => {
  const pool = new BufferPool()
  // A short idleTimeout: a timer left armed after the abort would fire during the wait below and
  // answer a second time, which Fastify logs (FST_ERR_REP_ALREADY_SENT).
  const logs: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _e, cb) { logs.push(chunk.toString()); cb() } })
  const app = await bodyApp(t, { pool, idleTimeout: 100 }, { logger: { level: 'warn', stream } })
  let runs = 0
  app.post('/echo', async (request) => { runs++; return request.body })
  let errors = 0
  app.addHook('onError', async () => { errors++ })
  const url = await listen(app)
  for (let i = 0; i < 20; i++) {
    await raw(url, json(1000, '[1,2,3,'), socket => { setTimeout(() => socket.destroy(), 10) })
  }
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(runs, 0, 'no handler ran for a body that never arrived')
  t.equal(errors, 20, 'one error per aborted request')
  t.same(logs.filter(line => /already sent/.test(line)), [], 'nothing answered twice')
  t.equal(pool.stats.inUse, 0)
  const res = await fetch(`${url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' })
  t.same(await res.json(), { a: 1 })
})

t.test('a small body counts its bytes against bodyLimit even when the payload outgrows its Content-Length', async t => {
  const app = await bodyApp(t, { bodyLimit: 100 })
  app.post('/echo', async (request) => request.body)
  await app.ready()
  // inject() does not hold a stream payload to its Content-Length the way Node's HTTP parser does.
  const res = await app.inject({
    method: 'POST',
    url: '/echo',
    headers: { 'content-type': 'application/json', 'content-length': '20' },
    payload: Readable.from([Buffer.from('['), Buffer.from('1,'.repeat(200)), Buffer.from('1]')])
  })
  t.equal(res.statusCode, 413)
  t.equal(res.json().code, 'FST_NEXURE_BODY_TOO_LARGE')
  t.match(res.json().message, /the body \(\d+ bytes so far\)/)
})

t.test('a small body that came in many chunks is decoded across their seams, and kept as it came', async t => {
  const app = await bodyApp(t, {})
  app.post('/json', async (request) => request.body)
  app.post('/ndjson', async (request) => request.body)
  app.post('/bytes', async (request) => {
    const parts: Buffer[] = []
    for await (const chunk of request.bodyStream()) parts.push(chunk as Buffer)
    return { hex: Buffer.concat(parts).toString('hex') }
  })
  await app.ready()
  // Every cut between two bytes, through 2-, 3- and 4-byte characters.
  const value = [{ name: 'José Zoë', city: '東京', smile: '😀' }, 'Søren']
  const cutEverywhere = (bytes: Buffer): Buffer[] => Array.from(bytes, (_, i) => bytes.subarray(i, i + 1))
  const send = async (url: string, type: string, bytes: Buffer) => await app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': type, 'content-length': String(bytes.length) },
    payload: Readable.from(cutEverywhere(bytes))
  })
  const json = Buffer.from(JSON.stringify(value))
  t.same((await send('/json', 'application/json', json)).json(), value, 'JSON, one byte a chunk')
  const lines = Buffer.from(value.map(item => JSON.stringify(item)).join('\n') + '\n')
  t.same((await send('/ndjson', 'application/x-ndjson', lines)).json(), value, 'NDJSON, one byte a chunk')
  const bytes = (await send('/bytes', 'application/json', json)).json<{ hex: string }>()
  t.equal(bytes.hex, json.toString('hex'), 'bodyStream() gives the bytes as they were sent')
  const broken = Buffer.concat([json.subarray(0, 10), Buffer.from([0xff]), json.subarray(10)])
  const res = await send('/json', 'application/json', Buffer.concat([Buffer.from('['), broken.subarray(1, 30), Buffer.from(']')]))
  t.equal(res.statusCode, 400, 'a malformed body in many chunks is still located')
  t.equal(res.json().code, 'FST_NEXURE_INVALID_JSON')
})

t.test('small bodies that need decoding or transforms still work', async t => {
  const { gzipSync } = await import('node:zlib')
  const app = await bodyApp(t)
  app.post('/echo', async (request) => request.body)
  const upper = (): Transform => new Transform({ transform (chunk: Buffer, _e, cb) { cb(null, Buffer.from(chunk.toString().replace('"a"', '"A"'))) } })
  app.post('/upper', { config: { streamBody: { transforms: [upper] } } }, async (request) => request.body)
  const url = await listen(app)
  const gz = await fetch(`${url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync('{"a":[1,2]}') })
  t.same(await gz.json(), { a: [1, 2] })
  const tr = await fetch(`${url}/upper`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' })
  t.same(await tr.json(), { A: 1 })
})

t.test('a small compressed body is decoded in one call, and answers as the streaming decoder would', async t => {
  const { brotliCompressSync, deflateSync, gzipSync } = await import('node:zlib')
  // Up to 1 MiB of output it is decoded on the event loop's thread, above it on the thread pool.
  const corruptMessages: string[] = []
  for (const streamThreshold of [64 * 1024, 2 * 1024 * 1024]) {
    const app = await bodyApp(t, { streamThreshold })
    app.post('/echo', async (request) => request.body)
    app.post('/count', async (request) => {
      let count = 0
      for await (const batch of request.batches()) count += batch.length
      return { count, buffered: request.body !== undefined }
    })
    app.post('/tight', { config: { streamBody: { bodyLimit: 1000 } } }, async (request) => request.body)
    const url = await listen(app)
    const send = async (path: string, encoding: string, body: Buffer): Promise<{ status: number, json: { code?: string, message?: string } & Record<string, unknown> }> => {
      const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': encoding }, body })
      return { status: res.status, json: await res.json() as { code?: string, message?: string } }
    }
    const value = { a: [1, 2, 3], b: 'é' }
    for (const [encoding, encode] of [['gzip', gzipSync], ['deflate', deflateSync], ['br', brotliCompressSync]] as const) {
      t.same((await send('/echo', encoding, encode(JSON.stringify(value)))).json, value, `${encoding}: decoded and parsed (streamThreshold ${streamThreshold})`)
    }
    // A few KB of gzip that inflate past streamThreshold: streamed, as before.
    const count = Math.ceil(streamThreshold / 2) + 1000
    const streamed = await send('/count', 'gzip', gzipSync(JSON.stringify(Array.from({ length: count }, () => 1))))
    t.same(streamed.json, { count, buffered: false }, 'a body that inflates past streamThreshold is streamed')
    const corrupt = await send('/echo', 'gzip', Buffer.concat([gzipSync('[1]').subarray(0, 12), Buffer.from('garbage')]))
    t.equal(corrupt.status, 400)
    t.equal(corrupt.json.code, 'FST_NEXURE_INVALID_ENCODING')
    t.match(corrupt.json.message, /^Cannot decode gzip body: /)
    corruptMessages.push(corrupt.json.message ?? '')
    const tight = await send('/tight', 'gzip', gzipSync(JSON.stringify(Array.from({ length: 2000 }, () => 1))))
    t.equal(tight.status, 413, 'bodyLimit counts the decoded bytes')
    t.match(tight.json.message, /the decoded body \(gzip\) \(\d+ bytes so far\)/)
  }
  t.equal(corruptMessages[0], corruptMessages[1], 'the same fault, the same words, wherever it was decoded')
})
