import t from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { BufferPool } from '../lib/index.js'
import { bodyApp, listen } from './helpers/server.js'

/** Sends headers and `first`, then one more byte every `everyMs`, until the socket closes; returns the response text. */
async function trickle (url: string, path: string, first: string, everyMs: number): Promise<string> {
  const { port, hostname } = new URL(url)
  const socket = net.connect(Number(port), hostname)
  await once(socket, 'connect')
  socket.write(`POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\n\r\n${first}`)
  const timer = setInterval(() => { if (!socket.destroyed) socket.write('1,') }, everyMs)
  let response = ''
  socket.on('data', chunk => { response += chunk.toString() })
  socket.on('error', () => {})
  await once(socket, 'close')
  clearInterval(timer)
  return response
}

t.test('a client silent mid-body for idleTimeout is ended with 408, and its resources freed', async t => {
  const pool = new BufferPool()
  const app = await bodyApp(t, { idleTimeout: 300, pool })
  let failure: { code?: string } | undefined
  app.post('/import', async (request) => {
    try {
      for await (const _ of request.batches()) { /* count */ }
    } catch (error) {
      failure = error as { code?: string }
      throw error
    }
    return 'done'
  })
  const url = await listen(app)
  const started = performance.now()
  const response = await trickle(url, '/import', '[1,2,', 5000)
  t.match(response, /^HTTP\/1\.1 408/)
  t.match(response, /FST_NEXURE_BODY_TIMEOUT/)
  t.match(response, /idleTimeout/)
  t.equal(failure?.code, 'FST_NEXURE_BODY_TIMEOUT')
  t.ok(performance.now() - started < 3000, 'ended soon after the idle limit')
  t.equal(pool.stats.inUse, 0)
})

t.test('a small body (read by the parser) is ended by idleTimeout too', async t => {
  const app = await bodyApp(t, { idleTimeout: 300, streamThreshold: 20_000_000 })
  app.post('/import', async (request) => request.body)
  const url = await listen(app)
  const response = await trickle(url, '/import', '[1,2,', 5000)
  t.match(response, /^HTTP\/1\.1 408/)
  t.match(response, /FST_NEXURE_BODY_TIMEOUT/)
})

t.test('a client that sends one byte a second is ended by bodyTimeout', async t => {
  const app = await bodyApp(t, { bodyTimeout: 1500, idleTimeout: 0 })
  app.post('/import', async (request) => {
    for await (const _ of request.batches()) { /* count */ }
    return 'done'
  })
  const url = await listen(app)
  const response = await trickle(url, '/import', '[', 200)
  t.match(response, /^HTTP\/1\.1 408/)
  t.match(response, /bodyTimeout/)
})

t.test('a slow handler is backpressure, not idleness: no timeout while it works', async t => {
  const app = await bodyApp(t, { idleTimeout: 200, streamThreshold: 0 })
  app.post('/slow', async (request) => {
    let n = 0
    for await (const batch of request.batches({ size: 20000 })) {
      n += batch.length
      await new Promise(resolve => setTimeout(resolve, 150))
    }
    return { n }
  })
  const url = await listen(app)
  const body = JSON.stringify(Array.from({ length: 200000 }, (_, i) => i))
  const res = await fetch(`${url}/slow`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  t.equal(res.status, 200)
  t.same(await res.json(), { n: 200000 })
})

t.test('timeouts can be set per route and are checked at registration', async t => {
  const app = await bodyApp(t)
  t.throws(() => app.post('/x', { config: { streamBody: { idleTimeout: -1 } } }, async () => 'x'), { code: 'FST_NEXURE_INVALID_OPTION', message: /idleTimeout/ })
  app.post('/tight', { config: { streamBody: { idleTimeout: 200 } } }, async (request) => {
    for await (const _ of request.batches()) { /* count */ }
    return 'done'
  })
  const url = await listen(app)
  t.match(await trickle(url, '/tight', '[1,', 5000), /^HTTP\/1\.1 408/)
})
