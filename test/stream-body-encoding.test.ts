import t from 'tap'
import zlib from 'node:zlib'
import { Readable } from 'node:stream'
import { request as undiciRequest } from 'undici'
import { bodyApp, countingRoute, listen } from './helpers/server.js'

const rows = Array.from({ length: 3000 }, (_, i) => ({ id: i, text: `ligne ${i} — ok` }))
const json = Buffer.from(JSON.stringify(rows))
const encoders: Record<string, (b: Buffer) => Buffer> = {
  gzip: b => zlib.gzipSync(b),
  deflate: b => zlib.deflateSync(b),
  br: b => zlib.brotliCompressSync(b)
}

for (const [encoding, encode] of Object.entries(encoders)) {
  for (const threshold of [1024 * 1024, 0]) {
    t.test(`${encoding} bodies are decoded (${threshold === 0 ? 'streamed' : 'small, request.body works'})`, async t => {
      const app = await bodyApp(t, { streamThreshold: threshold })
      countingRoute(app)
      const res = await app.inject({ method: 'POST', url: '/import', headers: { 'content-type': 'application/json', 'content-encoding': encoding }, payload: encode(json) })
      t.equal(res.statusCode, 200)
      t.same(res.json().items, rows)
      t.equal(res.json().body, threshold === 0 ? 'streamed' : 'buffered')
    })
  }
}

t.test('identity passes; an unknown encoding is a 415', async t => {
  const app = await bodyApp(t)
  countingRoute(app)
  const ok = await app.inject({ method: 'POST', url: '/import', headers: { 'content-type': 'application/json', 'content-encoding': 'identity' }, payload: '[1]' })
  t.equal(ok.statusCode, 200)
  const bad = await app.inject({ method: 'POST', url: '/import', headers: { 'content-type': 'application/json', 'content-encoding': 'zstd' }, payload: '[1]' })
  t.equal(bad.statusCode, 415)
  t.equal(bad.json().code, 'FST_NEXURE_UNSUPPORTED_ENCODING')
  t.match(bad.json().message, /zstd/)
})

t.test('a corrupt compressed body is a 400', async t => {
  const app = await bodyApp(t, { streamThreshold: 0 })
  countingRoute(app)
  const gz = encoders.gzip!(json)
  gz.writeUInt16BE(gz.readUInt16BE(gz.length >> 1) ^ 0xffff, gz.length >> 1)
  const res = await app.inject({ method: 'POST', url: '/import', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, payload: gz })
  t.equal(res.statusCode, 400)
  t.equal(res.json().code, 'FST_NEXURE_INVALID_ENCODING')
  t.match(res.json().message, /gzip/)
  const truncated = await app.inject({ method: 'POST', url: '/import', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, payload: encoders.gzip!(json).subarray(0, 100) })
  t.equal(truncated.statusCode, 400)
  t.equal(truncated.json().code, 'FST_NEXURE_INVALID_ENCODING')
})

t.test('a zip bomb is refused with 413 once the decoded bytes cross bodyLimit, without inflating the rest', async t => {
  // 1 GB of '0' inside a valid JSON string, as 16 gzip members of 64 MB each (gunzip reads
  // concatenated members as one stream): about 1 MB on the wire, and cheap to make.
  const zeros = Buffer.alloc(64 * 1024 * 1024, 0x30)
  const middle = zlib.gzipSync(zeros, { level: 9 })
  const bomb = Buffer.concat([
    zlib.gzipSync(Buffer.concat([Buffer.from('["'), zeros]), { level: 9 }),
    ...Array.from({ length: 14 }, () => middle),
    zlib.gzipSync(Buffer.concat([zeros, Buffer.from('"]')]), { level: 9 })
  ])
  t.ok(bomb.length < 2 * 1024 * 1024, `the bomb is ${bomb.length} bytes`)
  for (const threshold of [16 * 1024 * 1024, 0]) {
    const app = await bodyApp(t, { bodyLimit: 8 * 1024 * 1024, maxItemSize: 64 * 1024 * 1024, streamThreshold: threshold })
    countingRoute(app)
    const url = await listen(app)
    const started = performance.now()
    const before = process.memoryUsage().rss
    const res = await undiciRequest(`${url}/import`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: Readable.from([bomb]) })
    const elapsed = performance.now() - started
    t.equal(res.statusCode, 413)
    const body = await res.body.json() as { code: string, message: string }
    t.equal(body.code, 'FST_NEXURE_BODY_TOO_LARGE')
    t.match(body.message, /decoded body \(gzip\)/)
    t.ok(process.memoryUsage().rss - before < 256 * 1024 * 1024, 'the gigabyte was never held')
    t.ok(elapsed < 3000, `refused in ${elapsed.toFixed(0)} ms: the rest was not inflated`)
  }
})
