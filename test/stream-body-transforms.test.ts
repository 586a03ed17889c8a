import t from 'tap'
import { createHash } from 'node:crypto'
import { Transform } from 'node:stream'
import { request as undiciRequest } from 'undici'
import type { FastifyRequest } from 'fastify'
import { bodyApp, listen } from './helpers/server.js'

const digests = new WeakMap<FastifyRequest, () => string>()

function sha256 (request: FastifyRequest): Transform {
  const hash = createHash('sha256')
  digests.set(request, () => hash.copy().digest('hex'))
  return new Transform({
    transform (chunk: Buffer, _enc, callback) { hash.update(chunk); callback(null, chunk) }
  })
}

function upperCaseKeys (): Transform {
  return new Transform({
    transform (chunk: Buffer, _enc, callback) { callback(null, Buffer.from(chunk.toString('latin1').replaceAll('"name"', '"NAME"'), 'latin1')) }
  })
}

const rows = Array.from({ length: 5000 }, (_, i) => ({ name: `n${i}` }))
const body = JSON.stringify(rows)

for (const threshold of [1024 * 1024, 0]) {
  t.test(`transforms run in order on the decoded bytes (${threshold === 0 ? 'streamed' : 'small'})`, async t => {
    const app = await bodyApp(t, { streamThreshold: threshold, transforms: [sha256, upperCaseKeys] })
    app.post('/import', async (request) => {
      let first: unknown
      let n = 0
      for await (const batch of request.batches()) { first ??= batch[0]; n += batch.length }
      if (request.body !== undefined) first = (request.body as unknown[])[0]
      return { n, first, sha256: digests.get(request)!() }
    })
    const res = await app.inject({ method: 'POST', url: '/import', headers: { 'content-type': 'application/json' }, payload: body })
    t.equal(res.statusCode, 200)
    t.equal(res.json().n, 5000)
    t.same(res.json().first, { NAME: 'n0' })
    t.equal(res.json().sha256, createHash('sha256').update(body).digest('hex'), 'the digest of the body as sent')
  })
}

t.test('a route can replace the plugin transforms', async t => {
  const app = await bodyApp(t, { streamThreshold: 0, transforms: [upperCaseKeys] })
  app.post('/plain', { config: { streamBody: { transforms: [] } } }, async (request) => {
    for await (const batch of request.batches()) return batch[0]
    return null
  })
  const res = await app.inject({ method: 'POST', url: '/plain', headers: { 'content-type': 'application/json' }, payload: body })
  t.same(res.json(), { name: 'n0' })
})

t.test('a transform that throws mid-stream ends the request with its status (or 500) and frees everything', async t => {
  let calls = 0
  const failing = (status?: number) => () => new Transform({
    transform (chunk: Buffer, _enc, callback) {
      if (++calls === 3) {
        const error = Object.assign(new Error('quota exceeded'), status === undefined ? {} : { statusCode: status })
        callback(error)
        return
      }
      callback(null, chunk)
    }
  })
  for (const status of [429, undefined]) {
    calls = 0
    const app = await bodyApp(t, { streamThreshold: 0, streamChunkSize: 1024 })
    let seen = 0
    app.post('/import', { config: { streamBody: { transforms: [failing(status)] } } }, async (request) => {
      for await (const batch of request.batches({ size: 10 })) seen += batch.length
      return { seen }
    })
    const url = await listen(app)
    const res = await undiciRequest(`${url}/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(Array.from({ length: 200000 }, (_, i) => i)) })
    const json = await res.body.json() as { code?: string, message: string }
    if (status === undefined) {
      t.equal(res.statusCode, 500)
      t.equal(json.code, 'FST_NEXURE_TRANSFORM_FAILED')
      t.match(json.message, /quota exceeded/)
    } else {
      t.equal(res.statusCode, 429)
      t.match(json.message, /quota exceeded/)
    }
    t.ok(seen > 0, 'the handler saw the batches before the failure')
    const next = await app.inject({ method: 'POST', url: '/import', payload: [1] })
    t.equal(next.statusCode, 200, 'the server keeps serving')
  }
})
