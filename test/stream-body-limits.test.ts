import t from 'tap'
import { request as undiciRequest } from 'undici'
import { Readable } from 'node:stream'
import { bodyApp, countingRoute, listen } from './helpers/server.js'

/** An endless-looking JSON array made on the fly: `[0,1,2,...` up to `bytes`, then `]`. */
function jsonArrayOf (bytes: number, item = '{"id":1,"name":"abcdefghij"}'): Readable {
  let sent = 0
  let first = true
  return new Readable({
    read () {
      if (sent >= bytes) {
        this.push(']')
        this.push(null)
        return
      }
      const parts: string[] = []
      let size = 0
      while (size < 64 * 1024) {
        const part = first ? `[${item}` : `,${item}`
        first = false
        parts.push(part)
        size += part.length
      }
      sent += size
      this.push(parts.join(''))
    }
  })
}

t.test('content-length over bodyLimit is refused before reading, with connection: close', async t => {
  const app = await bodyApp(t, { bodyLimit: 100 })
  countingRoute(app)
  const res = await app.inject({ method: 'POST', url: '/import', payload: Array.from({ length: 100 }, (_, i) => i) })
  t.equal(res.statusCode, 413)
  t.equal(res.json().code, 'FST_NEXURE_BODY_TOO_LARGE')
  t.match(res.json().message, /content-length \d+ exceeds the limit of 100 bytes/)
  t.equal(res.headers.connection, 'close')
})

t.test('a chunked body is counted as it arrives: 413 once it crosses bodyLimit', async t => {
  const app = await bodyApp(t, { bodyLimit: 1024 * 1024 })
  let seen = 0
  app.post('/import', async (request) => {
    for await (const batch of request.batches()) seen += batch.length
    return { seen }
  })
  const url = await listen(app)
  const res = await undiciRequest(`${url}/import`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonArrayOf(10 * 1024 * 1024)
  })
  t.equal(res.statusCode, 413)
  t.equal(res.headers.connection, 'close')
  const body = await res.body.json() as { code: string, message: string }
  t.equal(body.code, 'FST_NEXURE_BODY_TOO_LARGE')
  t.match(body.message, /the body \(\d+ bytes so far\) exceeds the limit of 1048576 bytes/)
  t.ok(seen > 0 && seen < 40000, `the handler saw the items before the limit (${seen})`)
  const next = await app.inject({ method: 'POST', url: '/import', payload: [1, 2] })
  t.equal(next.statusCode, 200, 'the server keeps serving')
})

t.test('an explicit route bodyLimit wins over the plugin default', async t => {
  const app = await bodyApp(t)
  app.post('/tight', { bodyLimit: 10 }, async (request) => {
    let n = 0
    for await (const batch of request.batches()) n += batch.length
    return { n }
  })
  app.post('/config', { config: { streamBody: { bodyLimit: 12 } } }, async (request) => {
    let n = 0
    for await (const batch of request.batches()) n += batch.length
    return { n }
  })
  countingRoute(app, '/default')
  const payload = '[1,2,3,4,5,6,7,8]'
  t.equal((await app.inject({ method: 'POST', url: '/tight', headers: { 'content-type': 'application/json' }, payload })).statusCode, 413)
  t.equal((await app.inject({ method: 'POST', url: '/config', headers: { 'content-type': 'application/json' }, payload })).statusCode, 413)
  // Fastify's server default (1 MiB) is not an explicit route limit: the plugin's 1 GiB applies.
  const big = JSON.stringify(Array.from({ length: 300000 }, (_, i) => i))
  t.ok(big.length > 1024 * 1024)
  const res = await app.inject({ method: 'POST', url: '/default', headers: { 'content-type': 'application/json' }, payload: big })
  t.equal(res.statusCode, 200)
  t.equal(res.json().count, 300000)
})

t.test('an item over maxItemSize is a 413 as soon as it is crossed, not after it was buffered', async t => {
  const app = await bodyApp(t, { maxItemSize: 64 * 1024, streamThreshold: 0 })
  let seen = 0
  app.post('/import', async (request) => {
    for await (const batch of request.batches()) seen += batch.length
    return { seen }
  })
  const url = await listen(app)
  // One string element of 50 MB: if nexure buffered it whole before checking, memory would show it.
  let sent = 0
  const body = new Readable({
    read () {
      if (sent === 0) this.push('[1,2,"')
      if (sent > 50 * 1024 * 1024) { this.push('"]'); this.push(null); return }
      sent += 64 * 1024
      this.push('x'.repeat(64 * 1024))
    }
  })
  const res = await undiciRequest(`${url}/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  t.equal(res.statusCode, 413)
  const json = await res.body.json() as { code: string, message: string }
  t.equal(json.code, 'FST_NEXURE_ITEM_TOO_LARGE')
  t.match(json.message, /65536/)
  t.ok(sent < 10 * 1024 * 1024, `refused after ${sent} bytes were sent, not 50 MB`)
})

t.test('an NDJSON line over maxItemSize is a 413', async t => {
  const app = await bodyApp(t, { maxItemSize: 1024 })
  countingRoute(app)
  const res = await app.inject({ method: 'POST', url: '/import', headers: { 'content-type': 'application/x-ndjson' }, payload: `1\n"${'y'.repeat(5000)}"\n2\n` })
  t.equal(res.statusCode, 413)
  t.equal(res.json().code, 'FST_NEXURE_ITEM_TOO_LARGE')
})
