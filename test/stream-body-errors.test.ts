import t from 'tap'
import { once } from 'node:events'
import net from 'node:net'
import { BufferPool } from '../lib/index.js'
import { bodyApp, countingRoute, listen } from './helpers/server.js'

for (const threshold of [1024 * 1024, 0]) {
  const mode = threshold === 0 ? 'streamed' : 'buffered'

  t.test(`malformed JSON is a 400 that gives the byte offset (${mode})`, async t => {
    const app = await bodyApp(t, { streamThreshold: threshold })
    countingRoute(app)
    const res = await app.inject({ method: 'POST', url: '/import', headers: { 'content-type': 'application/json' }, payload: '[1,2,{"a":}]' })
    t.equal(res.statusCode, 400)
    t.equal(res.json().code, 'FST_NEXURE_INVALID_JSON')
    t.match(res.json().message, /byte offset \d+/)
    const trailing = await app.inject({ method: 'POST', url: '/import', headers: { 'content-type': 'application/json' }, payload: '[1,2] x' })
    t.equal(trailing.statusCode, 400)
    t.match(trailing.json().message, /byte offset 6/)
  })

  t.test(`an invalid NDJSON line is a 400 naming the line (${mode})`, async t => {
    const app = await bodyApp(t, { streamThreshold: threshold })
    countingRoute(app)
    const res = await app.inject({ method: 'POST', url: '/import', headers: { 'content-type': 'application/x-ndjson' }, payload: '1\n2\n{nope}\n4\n' })
    t.equal(res.statusCode, 400)
    t.equal(res.json().code, 'FST_NEXURE_INVALID_JSON')
    t.match(res.json().message, /line 3/)
    t.match(res.json().message, /byte offset 5 \(line 3\)/, 'the offset of the fault itself')
  })

  t.test(`an empty JSON body is a 400 (${mode})`, async t => {
    const app = await bodyApp(t, { streamThreshold: threshold })
    countingRoute(app)
    const res = await app.inject({ method: 'POST', url: '/import', headers: { 'content-type': 'application/json' }, payload: '' })
    t.equal(res.statusCode, 400)
    t.equal(res.json().code, 'FST_NEXURE_EMPTY_BODY')
  })

  t.test(`prototype poisoning follows the server's policy (${mode})`, async t => {
    const refused = await bodyApp(t, { streamThreshold: threshold })
    countingRoute(refused)
    const res = await refused.inject({ method: 'POST', url: '/import', headers: { 'content-type': 'application/json' }, payload: '[{"a":1},{"__proto__":{"admin":true}}]' })
    t.equal(res.statusCode, 400)
    t.equal(res.json().code, 'FST_NEXURE_FORBIDDEN_PROPERTY')

    const removing = await bodyApp(t, { streamThreshold: threshold }, { onProtoPoisoning: 'remove' })
    countingRoute(removing)
    const removed = await removing.inject({ method: 'POST', url: '/import', headers: { 'content-type': 'application/json' }, payload: '[{"a":1},{"__proto__":{"admin":true},"b":2}]' })
    t.equal(removed.statusCode, 200)
    t.same(removed.json().items, [{ a: 1 }, { b: 2 }])
  })
}

t.test('a client that aborts mid-body: the iterator rejects with ABORTED, nothing leaks, the server keeps serving', async t => {
  const pool = new BufferPool()
  const app = await bodyApp(t, { pool })
  let failure: { code?: string } | null = null
  let resolveSeen: () => void
  const seen = new Promise<void>(resolve => { resolveSeen = resolve })
  app.post('/import', async (request) => {
    let n = 0
    try {
      for await (const batch of request.batches()) n += batch.length
    } catch (error) {
      failure = error as { code?: string }
      resolveSeen()
      throw error
    }
    return { n }
  })
  const url = new URL(await listen(app))
  for (let round = 0; round < 20; round++) {
    const socket = net.connect(Number(url.port), url.hostname)
    await once(socket, 'connect')
    socket.write('POST /import HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000000\r\n\r\n')
    socket.write('[' + Array.from({ length: 5000 }, (_, i) => `{"id":${i},"s":"${'é'.repeat(round)}`).join('"},') + '"')
    await new Promise(resolve => setTimeout(resolve, 20))
    socket.destroy()
  }
  await seen
  t.equal(failure!.code, 'FST_NEXURE_ABORTED')
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(pool.stats.inUse, 0, 'every pooled buffer is back')
  const ok = await app.inject({ method: 'POST', url: '/import', payload: [1] })
  t.equal(ok.statusCode, 200)
})
