import t, { type Test } from 'tap'
import http, { type IncomingMessage } from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request as undiciRequest } from 'undici'
import { DirectRead, type DirectReadEvents } from '../../lib/stream/direct-read.js'
import { bodyApp, listen } from '../helpers/server.js'

// DirectRead is the path every body with nothing to decode, transform or throttle takes: the
// class over a real socket first, then through streamBody with undici.

interface Served {
  url: string
  /** The next request's payload, as the server got it. */
  next: () => Promise<{ payload: IncomingMessage, answer: (status: number, text: string) => void }>
}

async function plainServer (t: Test): Promise<Served> {
  const waiting: Array<(value: { payload: IncomingMessage, answer: (status: number, text: string) => void }) => void> = []
  const server = http.createServer((payload, response) => {
    waiting.shift()?.({ payload, answer: (status, text) => response.writeHead(status, { 'content-type': 'text/plain' }).end(text) })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const address = server.address() as net.AddressInfo
  return { url: `http://127.0.0.1:${address.port}`, next: () => new Promise(resolve => waiting.push(resolve)) }
}

interface Recorded {
  failed: Array<[string, string]>
  ended: number
  events: DirectReadEvents
}

function recorder (): Recorded {
  const record: Recorded = {
    failed: [],
    ended: 0,
    events: {
      failed: (error, stage) => { record.failed.push([(error as Error & { code?: string }).code ?? error.message, stage]) },
      ended: () => { record.ended++ }
    }
  }
  return record
}

/** A body of `chunks` pieces of `size` bytes, sent as fast as the socket takes them. */
function pieces (chunks: number, size: number, fill = 0x61): Readable {
  let sent = 0
  return new Readable({
    read () {
      this.push(sent++ < chunks ? Buffer.alloc(size, fill) : null)
    }
  })
}

t.test('hands out every byte as it came, and reports the end once', async t => {
  const served = await plainServer(t)
  const arrived = served.next()
  const sending = undiciRequest(`${served.url}/`, { method: 'POST', body: pieces(64, 10_000) })
  const { payload, answer } = await arrived
  const record = recorder()
  const reader = new DirectRead(payload, Infinity, 16 * 1024, record.events)
  let total = 0
  for (;;) {
    const next = await reader.next()
    if (next.done === true) break
    total += next.value.length
  }
  t.equal(total, 640_000)
  t.equal(reader.bytes, 640_000)
  t.equal(record.ended, 1)
  t.same(await reader.next(), { value: undefined, done: true }, 'asking again after the end is still the end')
  t.equal(record.ended, 2, 'the end is reported with each done (BodySource keeps the first)')
  t.same(record.failed, [])
  answer(200, 'ok')
  t.equal((await sending).statusCode, 200)
})

t.test('backpressure: with nobody asking, the payload is paused once highWaterMark bytes wait, and resumed as they are taken', async t => {
  const served = await plainServer(t)
  const arrived = served.next()
  const sending = undiciRequest(`${served.url}/`, { method: 'POST', body: pieces(2048, 16 * 1024) }) // 32 MB
  const { payload, answer } = await arrived
  const reader = new DirectRead(payload, Infinity, 64 * 1024, recorder().events)
  await sleep(300)
  const heldAt = reader.bytes
  t.equal(payload.readableFlowing, false, 'the payload is paused')
  // Node's HTTP parser may push one more socket read past the request's highWaterMark before it
  // stops (Node 22 and 24: 114,656 bytes seen, their streams' default highWaterMark is 64 KiB):
  // small either way against the 32 MB the client has to send.
  t.ok(payload.readableLength <= 256 * 1024, `the payload's own buffer stays small (${payload.readableLength} bytes)`)
  t.ok(heldAt < 8 * 1024 * 1024, `the client is held back by the socket: ${heldAt} of 32 MiB arrived`)
  await sleep(200)
  t.ok(reader.bytes - heldAt < 128 * 1024, 'nothing more is read while nobody asks')
  let total = 0
  for (;;) {
    const next = await reader.next()
    if (next.done === true) break
    total += next.value.length
  }
  t.equal(total, 32 * 1024 * 1024, 'every byte arrived once reading went on')
  answer(200, 'ok')
  t.equal((await sending).statusCode, 200)
})

t.test('the chunk that crosses the limit fails the read, is never handed out, and the payload is let go paused', async t => {
  const served = await plainServer(t)
  const arrived = served.next()
  const sending = undiciRequest(`${served.url}/`, { method: 'POST', body: pieces(100, 10_000) }).catch(error => error as Error)
  const { payload, answer } = await arrived
  const record = recorder()
  const reader = new DirectRead(payload, 25_000, 16 * 1024, record.events)
  let handedOut = 0
  const error = await (async () => {
    for (;;) {
      const next = await reader.next()
      if (next.done === true) return null
      handedOut += next.value.length
    }
  })().catch(error => error as Error & { code?: string, statusCode?: number })
  t.equal(error?.code, 'FST_NEXURE_BODY_TOO_LARGE')
  t.equal(error?.statusCode, 413)
  t.match(error?.message, /^Request body is too large: the body \(\d+ bytes so far\) exceeds the limit of 25000 bytes$/)
  t.ok(handedOut <= 25_000, `no byte past the limit was handed out (${handedOut})`)
  t.same(record.failed, [['FST_NEXURE_BODY_TOO_LARGE', 'limit']])
  t.equal(reader.stopped, true)
  t.equal(payload.destroyed, false, 'the payload (and its socket) is not destroyed')
  t.equal(payload.listenerCount('data'), 0, 'nothing listens to it any more')
  t.equal(payload.readableFlowing, false, 'it is left paused for the unread-body policy')
  await t.rejects(reader.next(), { code: 'FST_NEXURE_BODY_TOO_LARGE' }, 'the failure sticks')
  answer(413, 'too large')
  const response = await sending
  t.ok(!(response instanceof Error) ? response.statusCode === 413 : true, 'the client gets the answer (or a reset once it is sent)')
})

t.test('a client that goes away mid-body fails the waiting read, reported as the payload\'s failure', async t => {
  const served = await plainServer(t)
  const arrived = served.next()
  const { port } = new URL(served.url)
  const socket = net.connect(Number(port), '127.0.0.1')
  await once(socket, 'connect')
  socket.write('POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\n' + 'a'.repeat(1000))
  const { payload } = await arrived
  const record = recorder()
  const reader = new DirectRead(payload, Infinity, 16 * 1024, record.events)
  t.equal((await reader.next()).done, false, 'the first bytes arrive')
  const waiting = reader.next()
  socket.destroy()
  // The payload's own error ('aborted', ECONNRESET), or ABORTED when only 'close' came: BodySource
  // classifies either by its stage as FST_NEXURE_ABORTED (the streamBody test below).
  const error = await waiting.then(() => null, (error: Error & { code?: string }) => error)
  t.match(error?.code, /^(ECONNRESET|FST_NEXURE_ABORTED)$/)
  t.equal(record.failed.length, 1)
  t.equal(record.failed[0]?.[1], 'payload')
})

t.test('a payload closed before reading starts is an abort at once, not a read that waits forever', async t => {
  const payload = new Readable({ read () {} })
  payload.destroy()
  await once(payload, 'close')
  const record = recorder()
  const reader = new DirectRead(payload, Infinity, 16 * 1024, record.events)
  await t.rejects(reader.next(), { code: 'FST_NEXURE_ABORTED' })
  t.same(record.failed, [['FST_NEXURE_ABORTED', 'payload']])
})

t.test('destroy() stops a waiting read, leaves the payload paused and whole, and is idempotent', async t => {
  const served = await plainServer(t)
  const arrived = served.next()
  const body = new Readable({ read () {} })
  body.push('a'.repeat(1000))
  const sending = undiciRequest(`${served.url}/`, { method: 'POST', body, headers: { 'content-length': '2000' } })
  const { payload, answer } = await arrived
  const reader = new DirectRead(payload, Infinity, 16 * 1024, recorder().events)
  t.equal((await reader.next()).done, false)
  const waiting = reader.next()
  reader.destroy()
  reader.destroy()
  await t.rejects(waiting, { code: 'FST_NEXURE_ABORTED' })
  t.equal(payload.destroyed, false)
  t.equal(payload.readableFlowing, false)
  t.equal(payload.listenerCount('data'), 0)
  // The rest is the unread-body policy's: here, read it and answer on the same connection.
  payload.resume()
  body.push('b'.repeat(1000))
  body.push(null)
  await once(payload, 'end')
  answer(200, 'ok')
  t.equal((await sending).statusCode, 200)
})

// Through streamBody: bodies with no Content-Encoding, no transforms and no underPressure.

const ITEM = '{"id":1234567,"name":"abcdefghij","ok":true}'

function jsonChunks (items: number, perChunk: number): Readable {
  let sent = 0
  return new Readable({
    read () {
      if (sent >= items) { this.push(sent === items ? ']' : null); sent++; return }
      const n = Math.min(perChunk, items - sent)
      this.push((sent === 0 ? '[' : ',') + Array(n).fill(ITEM).join(','))
      sent += n
    }
  })
}

t.test('streamBody on the direct path: bodyLimit on the bytes of a chunked body, same code and message', async t => {
  const app = await bodyApp(t, { bodyLimit: 100_000 })
  const caught: { error: (Error & { code?: string }) | null } = { error: null }
  app.post('/items', async (request) => {
    try {
      for await (const _batch of request.batches()) { /* counting is enough */ }
    } catch (error) {
      caught.error = error as Error
      throw error
    }
    return { ok: true }
  })
  const url = await listen(app)
  const response = await undiciRequest(`${url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonChunks(20_000, 100) })
  const answer = await response.body.json() as { code: string, message: string }
  t.equal(response.statusCode, 413)
  t.equal(answer.code, 'FST_NEXURE_BODY_TOO_LARGE')
  t.match(answer.message, /^Request body is too large: the body \(\d+ bytes so far\) exceeds the limit of 100000 bytes$/)
  t.equal(response.headers.connection, 'close')
  t.equal(caught.error?.code, 'FST_NEXURE_BODY_TOO_LARGE')
})

t.test('streamBody on the direct path: idleTimeout ends a silent client, a slow handler does not count', async t => {
  const app = await bodyApp(t, { idleTimeout: 200, streamThreshold: 1024 })
  app.post('/items', async (request) => {
    let items = 0
    for await (const batch of request.batches()) {
      items += batch.length
      await sleep(300) // longer than idleTimeout, between batches: backpressure, not silence
    }
    return { items }
  })
  const url = await listen(app)
  const slow = await undiciRequest(`${url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonChunks(3000, 500) })
  t.same(await slow.body.json(), { items: 3000 }, 'a slow handler is not a silent client')

  const silent = new Readable({ read () {} })
  silent.push('[' + ITEM)
  const response = await undiciRequest(`${url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: silent })
  const answer = await response.body.json() as { code: string, message: string }
  t.equal(response.statusCode, 408)
  t.equal(answer.code, 'FST_NEXURE_BODY_TIMEOUT')
  t.match(answer.message, /no data for 200 ms \(idleTimeout\)/)
  silent.destroy()
})

t.test('streamBody on the direct path: a handler that stops early keeps the socket, and the connection serves the next request', async t => {
  const app = await bodyApp(t, { streamThreshold: 1024, drainLimit: 1024 * 1024 })
  app.post('/first', async (request) => {
    for await (const batch of request.batches({ size: 10 })) return { first: batch.length }
    return { first: 0 }
  })
  app.post('/count', async (request) => {
    let items = 0
    for await (const batch of request.batches()) items += batch.length
    return { items, stats: request.streamStats }
  })
  const url = await listen(app)
  const dispatcher = new Agent({ connections: 1 })
  t.teardown(() => dispatcher.close())
  const body = '[' + Array(5000).fill(ITEM).join(',') + ']'
  const stopped = await undiciRequest(`${url}/first`, { method: 'POST', dispatcher, headers: { 'content-type': 'application/json' }, body })
  t.same(await stopped.body.json(), { first: 10 })
  t.not(stopped.headers.connection, 'close', 'a short rest is drained, the connection kept')
  const counted = await undiciRequest(`${url}/count`, { method: 'POST', dispatcher, headers: { 'content-type': 'application/json' }, body })
  const result = await counted.body.json() as { items: number, stats: { bytesReceived: number, bytesDecoded: number } }
  t.equal(result.items, 5000, 'the next request on the same connection is read whole')
  t.equal(result.stats.bytesReceived, Buffer.byteLength(body))
  t.equal(result.stats.bytesDecoded, Buffer.byteLength(body))
})

t.test('streamBody on the direct path: a client that drops mid-body fails the handler\'s loop with FST_NEXURE_ABORTED', async t => {
  const app = await bodyApp(t, { streamThreshold: 1024 })
  const caught: { error: (Error & { code?: string }) | null } = { error: null }
  const failed = new Promise<void>(resolve => {
    app.post('/items', async (request) => {
      try {
        for await (const _batch of request.batches()) { /* reading */ }
      } catch (error) {
        caught.error = error as Error
        resolve()
        throw error
      }
      return { ok: true }
    })
  })
  const url = new URL(await listen(app))
  const socket = net.connect(Number(url.port), '127.0.0.1')
  await once(socket, 'connect')
  socket.write('POST /items HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\n\r\n[' + Array(2000).fill(ITEM).join(','))
  await sleep(100)
  socket.destroy()
  await failed
  t.equal(caught.error?.code, 'FST_NEXURE_ABORTED')
})
