import t, { type Test } from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { Readable } from 'node:stream'
import { Client } from 'undici'
import type { FastifyInstance } from 'fastify'
import { bodyApp, listen } from './helpers/server.js'

const smallRest = JSON.stringify(Array.from({ length: 2000 }, (_, i) => i)) // ~9 KB, under drainLimit
const bigRest = JSON.stringify(Array.from({ length: 800000 }, (_, i) => ({ i }))) // ~8.5 MB

function routes (app: FastifyInstance): void {
  app.post('/ignore', async (request) => ({ port: request.raw.socket.remotePort }))
  app.post('/first-batch', async (request) => {
    for await (const batch of request.batches({ size: 10 })) return { first: batch.length, port: request.raw.socket.remotePort }
    return { first: 0 }
  })
  app.post('/count', async (request) => {
    let n = 0
    for await (const batch of request.batches()) n += batch.length
    return { n, port: request.raw.socket.remotePort }
  })
}

async function twoRequests (t: Test, client: Client, first: { path: string, body: string }): Promise<{ a: { statusCode: number, json: any }, b: { statusCode: number, json: any } }> {
  const send = async (path: string, body: string): Promise<{ statusCode: number, json: any }> => {
    const res = await client.request({ method: 'POST', path, headers: { 'content-type': 'application/json' }, body })
    return { statusCode: res.statusCode, json: await res.body.json() }
  }
  const a = await send(first.path, first.body)
  const b = await send('/count', '[1,2,3]')
  t.equal(b.statusCode, 200, 'the next request on the connection succeeds')
  t.equal(b.json.n, 3)
  return { a, b }
}

t.test('unread bodies do not poison keep-alive connections', async t => {
  const app = await bodyApp(t, { streamThreshold: 0, bodyLimit: 64 * 1024 * 1024 })
  routes(app)
  const url = await listen(app)

  t.test('a short unread rest is drained and the connection reused', async t => {
    const client = new Client(url, { pipelining: 1 })
    t.teardown(() => client.close())
    const { a, b } = await twoRequests(t, client, { path: '/ignore', body: smallRest })
    t.equal(a.statusCode, 200)
    t.equal(a.json.port, b.json.port, 'same connection')
  })

  t.test('a large unread rest closes the connection cleanly', async t => {
    const client = new Client(url, { pipelining: 1 })
    t.teardown(() => client.close())
    const { a } = await twoRequests(t, client, { path: '/ignore', body: bigRest })
    t.equal(a.statusCode, 200)
  })

  t.test('a handler that breaks out of its loop early', async t => {
    const client = new Client(url, { pipelining: 1 })
    t.teardown(() => client.close())
    const { a } = await twoRequests(t, client, { path: '/first-batch', body: bigRest })
    t.equal(a.statusCode, 200)
    t.equal(a.json.first, 10)
  })

  t.test('after a 400 early in a large body', async t => {
    const client = new Client(url, { pipelining: 1 })
    t.teardown(() => client.close())
    const { a } = await twoRequests(t, client, { path: '/count', body: '[1,2,oops' + bigRest })
    t.equal(a.statusCode, 400)
    t.equal(a.json.code, 'FST_NEXURE_INVALID_JSON')
  })
})

t.test('after a 413 mid-body', async t => {
  const app = await bodyApp(t, { streamThreshold: 0, bodyLimit: 1024 * 1024 })
  routes(app)
  const url = await listen(app)
  const client = new Client(url, { pipelining: 1 })
  t.teardown(() => client.close())
  const res = await client.request({ method: 'POST', path: '/count', headers: { 'content-type': 'application/json' }, body: Readable.from([bigRest]) })
  t.equal(res.statusCode, 413)
  await res.body.dump()
  const next = await client.request({ method: 'POST', path: '/count', headers: { 'content-type': 'application/json' }, body: '[1]' })
  t.equal(next.statusCode, 200)
  t.equal((await next.body.json() as { n: number }).n, 1)
})

t.test('a short rest that arrives after an early answer is drained, and the connection reused', async t => {
  // The handler reads one batch and answers while the client still holds back the rest (under
  // drainLimit): nexure must read and discard that rest after the answer, or the next request
  // on the connection waits behind it (Node does not dump a body that was piped and paused).
  // A raw socket, so that only the server decides whether the connection goes on.
  const app = await bodyApp(t, { streamThreshold: 0 })
  routes(app)
  const { port, hostname } = new URL(await listen(app))
  const socket = net.connect(Number(port), hostname)
  t.teardown(() => socket.destroy())
  await once(socket, 'connect')
  let received = ''
  const responses = (n: number): Promise<string[]> => new Promise(resolve => {
    const check = (): void => {
      const found = received.split('HTTP/1.1 ').slice(1)
      if (found.length >= n && found.every(r => /\r\n\r\n\{.*\}/s.test(r))) {
        socket.removeListener('data', check)
        resolve(found)
      }
    }
    socket.on('data', chunk => { received += chunk.toString() })
    socket.on('data', check)
  })
  const head = '[' + Array.from({ length: 100 }, (_, i) => i).join(',') + ','
  const rest = Array.from({ length: 9000 }, (_, i) => i).join(',') + ']' // ~44 KB: past the request's own buffer
  socket.write(`POST /first-batch HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${head.length + rest.length}\r\n\r\n${head}`)
  const [first] = await responses(1)
  t.match(first, /^200 /)
  t.notMatch(first, /connection: close/i, 'a short rest keeps the connection')
  t.match(first, /"first":10/)
  socket.write(rest)
  socket.write('POST /count HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n[1,2,3]')
  const [, second] = await responses(2)
  t.match(second, /^200 /, 'the next request on the connection is answered')
  t.match(second, /"n":3/)
})
