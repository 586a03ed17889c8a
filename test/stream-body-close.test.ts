import t from 'tap'
import type { AddressInfo, Socket } from 'node:net'
import { Readable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { eventually } from './helpers/multipart.js'
import { bodyApp, listen } from './helpers/server.js'
import { requestHead, sendAfterAnswer } from './helpers/after-answer.js'

// RFC 9112 §9.6: a server that answers with `connection: close` must not process any further
// request on that connection. nexure answers early while the client may still be sending (a
// 400 in the first bytes of a large body, a 413, a handler that ignores the body) and keeps
// reading for a while so that the client reads its answer instead of a reset: what it reads
// then must be thrown away below the HTTP parser, never run as a request nobody will answer.

const MiB = 1024 * 1024
const charge = requestHead('POST', '/charge', { 'content-type': 'application/json', 'content-length': 2 }) + '\r\n{}'

interface Server { app: FastifyInstance, port: number, reached: string[], charges: () => number, sockets: Socket[] }

async function server (t: Parameters<typeof bodyApp>[0], streamThreshold?: number): Promise<Server> {
  const app = await bodyApp(t, { maxItemSize: 64 * 1024, streamThreshold })
  const reached: string[] = []
  let charges = 0
  app.addHook('onRequest', async request => { reached.push(request.url) })
  app.post('/count', async request => {
    let n = 0
    for await (const batch of request.batches()) n += batch.length
    return { n }
  })
  app.post('/typed', { config: { streamBody: { itemSchema: { type: 'integer' } } } }, async request => {
    let n = 0
    for await (const batch of request.batches()) n += batch.length
    return { n }
  })
  app.post('/ignore', async () => ({ ignored: true }))
  // The body is claimed only once the streamed reply starts: onSend cannot know it will be read.
  app.post('/lazy', async (request, reply) => {
    async function * lines (): AsyncGenerator<string> {
      let n = 0
      for await (const batch of request.batches()) n += batch.length
      yield JSON.stringify({ n })
    }
    return reply.send(Readable.from(lines()))
  })
  app.post('/charge', async () => ({ charged: ++charges }))
  await listen(app)
  const sockets: Socket[] = []
  app.server.on('connection', (socket: Socket) => sockets.push(socket))
  return { app, port: (app.server.address() as AddressInfo).port, reached, charges: () => charges, sockets }
}

function * chunked (parts: Iterable<string>): Generator<string> {
  for (const part of parts) yield `${Buffer.byteLength(part).toString(16)}\r\n${part}\r\n`
  yield '0\r\n\r\n'
}

function * pieces (text: string, size = 64 * 1024): Generator<string> {
  for (let i = 0; i < text.length; i += size) yield text.slice(i, i + size)
}

const numbers = ',0'.repeat(MiB) // 2 MiB of a valid array's tail
const cases: Array<{ name: string, path: string, body: string, chunked?: boolean, status: number, code?: string, says?: string }> = [
  { name: 'malformed JSON (400)', path: '/count', body: '[1,2,oops' + numbers + ']', status: 400, code: 'FST_NEXURE_INVALID_JSON' },
  { name: 'malformed JSON in a chunked body (400)', path: '/count', body: '[1,2,oops' + numbers + ']', chunked: true, status: 400, code: 'FST_NEXURE_INVALID_JSON' },
  { name: 'an item over maxItemSize (413)', path: '/count', body: '["' + 'x'.repeat(2 * MiB) + '"]', status: 413, code: 'FST_NEXURE_ITEM_TOO_LARGE' },
  { name: 'an item refused by itemSchema (400)', path: '/typed', body: '["a"' + numbers + ']', status: 400, code: 'FST_NEXURE_INVALID_ITEM' },
  { name: 'an unread rest too long to drain (200)', path: '/ignore', body: '[0' + numbers + ']', status: 200 },
  { name: 'a streamed reply that reads the whole body (200)', path: '/lazy', body: '[0' + numbers + ']', status: 200, says: `"n":${MiB + 1}` }
]

for (const c of cases) {
  t.test(`after ${c.name} with connection: close, a request sent on that connection is never run`, async t => {
    const { port, reached, charges, sockets } = await server(t)
    const head = requestHead('POST', c.path, {
      'content-type': 'application/json',
      ...(c.chunked === true ? { 'transfer-encoding': 'chunked' } : { 'content-length': Buffer.byteLength(c.body) })
    })
    const result = await sendAfterAnswer(port, { head, body: c.chunked === true ? chunked(pieces(c.body)) : pieces(c.body) }, charge)
    t.equal(result.first.status, c.status, 'the first answer arrives whole')
    if (c.code !== undefined) t.equal(JSON.parse(result.first.body).code, c.code)
    if (c.says !== undefined) t.match(result.first.body, c.says, 'the handler read the whole body while answering')
    t.equal(result.first.headers.connection, 'close', 'it announces the end of the connection')
    t.ok(result.serverEnded, 'the server ends the connection after its answer')
    t.equal(result.error, null, 'no reset reached the client')
    t.equal(result.after, '', 'nothing is written after the first answer')
    t.equal(charges(), 0, 'the second request never ran')
    t.same(reached, [c.path], 'only the first request reached Fastify')
    // The linger reads what the client sends and closes as soon as the client is done, well
    // before its 2 s bound.
    t.ok(await eventually(async () => sockets[0]?.destroyed === true, 1500), 'the server closes once the client has finished')
    t.equal(sockets[0]?.bytesRead, result.bytesWritten, 'everything the client sent was read (and discarded)')
  })
}

t.test('a malformed body that has fully arrived keeps the connection: the next request is run and answered', async t => {
  // streamThreshold 0: the small body is streamed, so the 400 comes from the handler's loop,
  // after the HTTP parser has seen the whole body.
  const { port, reached, charges } = await server(t, 0)
  const body = '[1,2,oops]'
  const head = requestHead('POST', '/count', { 'content-type': 'application/json', 'content-length': body.length })
  const result = await sendAfterAnswer(port, { head, body: [body] }, charge)
  t.equal(result.first.status, 400)
  t.equal(JSON.parse(result.first.body).code, 'FST_NEXURE_INVALID_JSON')
  t.not(result.first.headers.connection, 'close', 'the connection stays open')
  t.notOk(result.serverEnded)
  t.match(result.after, /^HTTP\/1\.1 200 [^]*\{"charged":1\}$/, 'the second request is answered')
  t.equal(charges(), 1)
  t.same(reached, ['/count', '/charge'])
})
