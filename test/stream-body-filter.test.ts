// `request.batches({ filter })` through the real plugin over a real socket: bodies streamed in
// small chunks and bodies read whole give the reference's items (secure-json-parse on the whole
// body, walked in document order); hostile bodies get their coded answer with a location; the
// server keeps serving and no pooled slab stays in use, also when the client goes away mid-body.

import t, { type Test } from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { request } from 'undici'
import { BufferPool, type BatchesOptions } from '../lib/index.js'
import { bodyApp, listen } from './helpers/server.js'
import { eventually } from './helpers/multipart.js'
import { FilterGen, referenceFilter } from './helpers/filter-reference.js'
import { prng } from './helpers/chunking.js'

const JSON_TYPE = { 'content-type': 'application/json' }

interface Served { app: FastifyInstance, url: string, pool: BufferPool }

/**
 * `/streamed` streams every body, `/buffered` reads bodies up to 1 MiB whole first; the filter
 * is chosen by the `f` query parameter (FILTERS), and each answers the items it pulled.
 */
async function filterApp (t: Test, options: Parameters<typeof bodyApp>[1] = {}): Promise<Served> {
  const pool = new BufferPool()
  const app = await bodyApp(t, { pool, batchSize: 4, ...options })
  const handler = async (req: FastifyRequest<{ Querystring: { f?: string } }>) => {
    const items: unknown[] = []
    for await (const batch of req.batches({ filter: FILTERS[Number(req.query.f ?? 0)]! })) {
      if (batch.length > 4) throw new Error('a batch larger than batchSize')
      items.push(...batch)
    }
    return { items }
  }
  app.post('/streamed', { config: { streamBody: { streamThreshold: 0, maxItemSize: 4096, maxDepth: 40 } } }, handler)
  app.post('/buffered', { config: { streamBody: { maxItemSize: 4096, maxDepth: 40 } } }, handler)
  return { app, url: await listen(app), pool }
}

const FILTERS: NonNullable<BatchesOptions['filter']>[] = [
  /^rows\.\d+$/,
  /(^|\.)k1_[^.]*$/,
  path => path.length === 2 && typeof path[1] === 'number'
]

/** The body in pieces of 1 to 7 bytes, as a slow client sends it. */
function trickle (body: Buffer, seed: number): Readable {
  const random = prng(seed)
  const pieces: Buffer[] = []
  for (let at = 0; at < body.length;) {
    const size = 1 + Math.floor(random() * 7)
    pieces.push(body.subarray(at, at + size))
    at += size
  }
  return Readable.from(pieces)
}

async function post (url: string, body: string | Buffer | Readable, headers: Record<string, string> = JSON_TYPE): Promise<{ status: number, json: any }> {
  const res = await request(url, { method: 'POST', headers, body })
  const text = await res.body.text()
  let json: any
  try { json = JSON.parse(text) } catch { json = text }
  return { status: res.statusCode, json }
}

async function stillServing (t: Test, { url, pool }: Served): Promise<void> {
  const res = await post(`${url}/streamed`, '{"rows":[1,2,3]}')
  t.same(res.json.items, [1, 2, 3], 'the server keeps serving')
  t.ok(await eventually(async () => pool.stats.inUse === 0, 3000), `no pooled slab left in use (${pool.stats.inUse})`)
}

t.test('streamed in small chunks and read whole: the reference items, in document order', async t => {
  const served = await filterApp(t)
  const gen = new FilterGen(4242, { maxDepth: 4 })
  for (let k = 0; k < 18; k++) {
    const f = k % FILTERS.length
    const body = Buffer.from(`{"head":${gen.value(1)},"rows":${gen.array(1, gen.int(9))},"tail":${gen.object(1)}}`)
    const reference = referenceFilter(body, FILTERS[f]!)
    t.equal(reference.code, undefined, 'valid JSON')
    const streamed = await post(`${served.url}/streamed?f=${f}`, trickle(body, k))
    t.same(streamed, { status: 200, json: { items: reference.items } }, `streamed #${k} (filter ${f})`)
    const buffered = await post(`${served.url}/buffered?f=${f}`, body)
    t.same(buffered, { status: 200, json: { items: reference.items } }, `buffered #${k} (filter ${f})`)
  }
  await stillServing(t, served)
})

t.test('document order and a key given twice: streamed and buffered answer alike', async t => {
  const served = await filterApp(t)
  const ordered = '{"b":{"x":1},"2":{"x":2},"a":{"x":3}}'
  for (const route of ['streamed', 'buffered']) {
    const res = await post(`${served.url}/${route}?f=1`, ordered.replace(/"(b|2|a)"/g, '"k1_$1"'))
    t.same(res.json.items, [{ x: 1 }, { x: 2 }, { x: 3 }], `${route}: in document order`)
    const twice = await post(`${served.url}/${route}`, '{"rows":[1],"rows":[2]}')
    t.equal(twice.status, 400, `${route}: a key given twice around the selection`)
    t.match(twice.json.message, /"rows" appears again .*at byte offset 12/)
  }
  await stillServing(t, served)
})

// ---- hostile bodies --------------------------------------------------------------------------

t.test('hostile: poisoning inside and around the selection follows the server\'s policy', async t => {
  const body = '{"rows":[{"a":1},{"b":{"__proto__":{"polluted":true}}}]}'
  const refuse = await filterApp(t)
  for (const route of ['streamed', 'buffered']) {
    const res = await post(`${refuse.url}/${route}`, route === 'streamed' ? trickle(Buffer.from(body), 1) : body)
    t.equal(res.status, 400, `${route}: refused`)
    t.equal(res.json.code, 'FST_NEXURE_FORBIDDEN_PROPERTY')
    if (route === 'streamed') t.match(res.json.message, /at byte offset 17 \(item 1\)/, 'names the item and where it starts')
  }
  const around = await post(`${refuse.url}/streamed`, '{"x":{"__proto__":[]},"rows":[1]}')
  t.match(around.json, { code: 'FST_NEXURE_FORBIDDEN_PROPERTY', message: /key "__proto__" at byte offset 6/ })
  await stillServing(t, refuse)

  const remove = await bodyApp(t, { batchSize: 4 }, { onProtoPoisoning: 'remove', onConstructorPoisoning: 'remove' })
  remove.post('/streamed', { config: { streamBody: { streamThreshold: 0 } } }, async req => {
    const items: unknown[] = []
    for await (const batch of req.batches({ filter: /^rows\.\d+$/ })) items.push(...batch)
    return { items, polluted: items.map(item => Object.getPrototypeOf(item) === Object.prototype) }
  })
  const url = await listen(remove)
  const removed = await post(`${url}/streamed`, trickle(Buffer.from('{"rows":[{"b":{"__proto__":{"p":1},"c":2}},{"constructor":{"prototype":{}},"d":3}]}'), 2))
  t.same(removed.json, { items: [{ b: { c: 2 } }, { d: 3 }], polluted: [true, true] }, 'removed as secure-json-parse removes them')
})

t.test('hostile: nesting past maxDepth inside a match is a 400 at the bracket', async t => {
  const served = await filterApp(t)
  const body = '{"rows":[1,' + '['.repeat(50) + ']'.repeat(50) + ']}'
  const res = await post(`${served.url}/streamed`, trickle(Buffer.from(body), 3))
  t.equal(res.status, 400)
  t.equal(res.json.code, 'FST_NEXURE_INVALID_JSON')
  t.match(res.json.message, /more than 40 levels .* at byte offset 49 \(item 1\)/)
  const outside = await post(`${served.url}/streamed`, '{"x":' + '['.repeat(60) + ']'.repeat(60) + ',"rows":[1]}')
  t.match(outside.json.message, /more than 40 levels .* at byte offset 44\b/, 'outside the selection too')
  const huge = await post(`${served.url}/streamed`, Readable.from([Buffer.alloc(4 * 1024 * 1024, '[')]))
  t.equal(huge.status, 400, '4 MiB of brackets: refused at the 41st')
  await stillServing(t, served)
})

t.test('hostile: a matched value past maxItemSize is a 413 naming the item, before it ends', async t => {
  const served = await filterApp(t)
  const big = '{"rows":[{"a":1},{"blob":"' + 'x'.repeat(8000) + '"}]}'
  const res = await post(`${served.url}/streamed`, trickle(Buffer.from(big), 4))
  t.equal(res.status, 413)
  t.equal(res.json.code, 'FST_NEXURE_ITEM_TOO_LARGE')
  t.match(res.json.message, /the selected value starting at byte offset 17 \(item 1\) exceeds maxItemSize of 4096 bytes/)
  // Endless: the body never ends, the answer comes once the value passes the limit.
  let stop = false
  const endless = Readable.from((async function * () {
    yield '{"rows":[{"s":"'
    while (!stop) {
      yield 'y'.repeat(1024)
      await new Promise(resolve => setImmediate(resolve))
    }
  })())
  const answer = await post(`${served.url}/streamed`, endless)
  stop = true
  t.equal(answer.status, 413, 'an endless value is cut at maxItemSize')
  const off = await post(`${served.url}/streamed`, '{"skip":"' + 'z'.repeat(5000) + '","rows":[]}')
  t.match(off.json, { code: 'FST_NEXURE_ITEM_TOO_LARGE', message: /a string starting at byte offset 8/ }, 'a string outside the selection is bounded too')
  await stillServing(t, served)
})

t.test('hostile: malformed JSON is a 400 with the byte offset; bodyLimit holds', async t => {
  const served = await filterApp(t, { bodyLimit: 64 * 1024 })
  const res = await post(`${served.url}/streamed`, trickle(Buffer.from('{"rows":[1,2,,3]}'), 5))
  t.same(res.json.code, 'FST_NEXURE_INVALID_JSON')
  t.match(res.json.message, /Unexpected ',' \(empty element\), expected a value at byte offset 13/)
  const cut = await post(`${served.url}/streamed`, trickle(Buffer.from('{"rows":[1,2'), 6))
  t.match(cut.json.message, /Unexpected end of JSON input at byte offset 12/)
  const large = await post(`${served.url}/streamed`, Readable.from((function * () { yield '{"rows":['; for (let k = 0; k < 2000; k++) yield '1234567890123456789012345678901234567890,' })()))
  t.equal(large.status, 413, 'bodyLimit')
  t.equal(large.json.code, 'FST_NEXURE_BODY_TOO_LARGE')
  await stillServing(t, served)
})

t.test('a client that goes away mid-body leaves nothing behind', async t => {
  const served = await filterApp(t)
  const { port } = new URL(served.url)
  const socket = net.connect(Number(port), '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write('POST /streamed HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n')
  socket.write('{"rows":[{"a":1},{"b":"' + 'q'.repeat(2000))
  await new Promise(resolve => setTimeout(resolve, 50))
  socket.destroy()
  await stillServing(t, served)
})

t.test('arguments and media types', async t => {
  const app = await bodyApp(t)
  app.post('/both', { config: { streamBody: { streamThreshold: 0 } } }, async req => {
    for await (const _ of req.batches({ filter: /x/, path: 'rows' })) void _
    return {}
  })
  app.post('/pairs', async req => {
    for await (const _ of req.batches({ filter: /x/, entries: true })) void _
    return {}
  })
  app.post('/wrong', async req => {
    for await (const _ of req.batches({ filter: 'rows' as unknown as RegExp })) void _
    return {}
  })
  app.post('/any', async req => {
    const items: unknown[] = []
    for await (const batch of req.batches({ filter: /^\d+$/ })) items.push(...batch)
    return { items }
  })
  const url = await listen(app)
  const both = await post(`${url}/both`, '{"rows":[]}')
  t.match(both, { status: 500, json: { code: 'FST_NEXURE_INVALID_ARGUMENT', message: /batches\(\{ filter \}\).*cannot be combined with path/ } })
  const pairs = await post(`${url}/pairs`, '{"x":1}')
  t.match(pairs, { status: 500, json: { code: 'FST_NEXURE_INVALID_ARGUMENT', message: /batches\(\{ filter \}\).*cannot be combined with entries/ } })
  const wrong = await post(`${url}/wrong`, '[]')
  t.match(wrong, { status: 500, json: { code: 'FST_NEXURE_INVALID_ARGUMENT', message: /expected a RegExp or a function \(path\) => boolean, got "rows"/ } })
  const ndjson = await post(`${url}/any`, '1\n2\n', { 'content-type': 'application/x-ndjson' })
  t.match(ndjson, { status: 415, json: { code: 'FST_NEXURE_UNSUPPORTED_MEDIA_TYPE', message: /batches\(\{ filter \}\)/ } })
  t.same((await post(`${url}/any`, '[5,6]')).json.items, [5, 6])
})
