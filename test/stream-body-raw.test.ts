import t from 'tap'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { request as undiciRequest } from 'undici'
import { bodyApp, listen } from './helpers/server.js'

async function digestOf (stream: Readable): Promise<{ bytes: number, sha256: string }> {
  const hash = createHash('sha256')
  let bytes = 0
  for await (const chunk of stream) { hash.update(chunk as Buffer); bytes += (chunk as Buffer).length }
  return { bytes, sha256: hash.digest('hex') }
}

t.test('bodyStream() gives the bytes of an application/octet-stream body, small or streamed', async t => {
  const app = await bodyApp(t, { streamThreshold: 64 * 1024 })
  app.post('/raw', async (request) => ({ ...await digestOf(request.bodyStream()), stats: request.streamStats }))
  const url = await listen(app)
  for (const size of [10, 64 * 1024, 5 * 1024 * 1024 + 3]) {
    const payload = Buffer.alloc(size, 'nexure')
    const res = await undiciRequest(`${url}/raw`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: payload })
    const json = await res.body.json() as { bytes: number, sha256: string, stats: { bytesReceived: number } | null }
    t.equal(res.statusCode, 200)
    t.equal(json.bytes, size)
    t.equal(json.sha256, createHash('sha256').update(payload).digest('hex'))
    if (size > 64 * 1024) t.equal(json.stats?.bytesReceived, size, 'streamStats after a streamed body')
  }
})

t.test('bodyStream() works on JSON bodies too, and is exclusive with batches()', async t => {
  const app = await bodyApp(t, { streamThreshold: 0 })
  app.post('/both', async (request) => {
    const stream = request.bodyStream()
    try {
      request.batches()
    } catch (error) {
      const text = Buffer.concat(await stream.toArray()).toString()
      return { code: (error as { code: string }).code, message: (error as Error).message, text }
    }
    return { code: null }
  })
  const res = await app.inject({ method: 'POST', url: '/both', payload: [1, 2] })
  t.equal(res.json().code, 'FST_NEXURE_BODY_CONSUMED')
  t.match(res.json().message, /request\.batches\(\).*request\.bodyStream\(\)/)
  t.equal(res.json().text, '[1,2]')
})

t.test('batches() on an octet-stream body is a 415', async t => {
  const app = await bodyApp(t)
  app.post('/raw', async (request) => { for await (const _ of request.batches()) return 'no'; return 'none' })
  const res = await app.inject({ method: 'POST', url: '/raw', headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from('[1]') })
  t.equal(res.statusCode, 415)
  t.equal(res.json().code, 'FST_NEXURE_UNSUPPORTED_MEDIA_TYPE')
})

t.test('rawContentTypes registers more raw types, with the same limits', async t => {
  const app = await bodyApp(t, { rawContentTypes: ['text/csv'], bodyLimit: 1024, streamThreshold: 0 })
  app.post('/csv', async (request) => (await digestOf(request.bodyStream())).bytes)
  const ok = await app.inject({ method: 'POST', url: '/csv', headers: { 'content-type': 'text/csv' }, payload: 'a,b\n1,2\n' })
  t.equal(ok.statusCode, 200)
  t.equal(ok.body, '8')
  const big = await app.inject({ method: 'POST', url: '/csv', headers: { 'content-type': 'text/csv' }, payload: 'x'.repeat(2000) })
  t.equal(big.statusCode, 413)
})
