import t from 'tap'
import { Readable } from 'node:stream'
import { request as undiciRequest } from 'undici'
import { bodyApp, listen } from './helpers/server.js'

const itemSchema = {
  type: 'object',
  required: ['id', 'email'],
  properties: { id: { type: 'integer' }, email: { type: 'string', pattern: '@' } }
}

for (const threshold of [1024 * 1024, 0]) {
  t.test(`itemSchema validates every item (${threshold === 0 ? 'streamed' : 'buffered'})`, async t => {
    const app = await bodyApp(t, { streamThreshold: threshold })
    const seen: unknown[] = []
    app.post('/import', { config: { streamBody: { itemSchema, batchSize: 2 } } }, async (request) => {
      for await (const batch of request.batches()) seen.push(...batch)
      return { n: seen.length }
    })
    const good = await app.inject({ method: 'POST', url: '/import', payload: [{ id: 1, email: 'a@b' }, { id: 2, email: 'c@d' }] })
    t.equal(good.statusCode, 200)
    seen.length = 0
    const bad = await app.inject({ method: 'POST', url: '/import', payload: [{ id: 1, email: 'a@b' }, { id: 2, email: 'c@d' }, { id: 3, email: 'e@f' }, { id: 'x', email: 'g@h' }] })
    t.equal(bad.statusCode, 400)
    t.equal(bad.json().code, 'FST_NEXURE_INVALID_ITEM')
    t.match(bad.json().message, /Item 3 is invalid: \/id must be integer/)
    t.same(seen, [{ id: 1, email: 'a@b' }, { id: 2, email: 'c@d' }], 'the handler never saw the invalid item nor its batch')
  })
}

t.test('an invalid item in the middle of a 100 MB body: earlier batches seen, 400 names the index', async t => {
  const app = await bodyApp(t)
  let seen = 0
  app.post('/import', { config: { streamBody: { itemSchema } } }, async (request) => {
    for await (const batch of request.batches()) seen += batch.length
    return { seen }
  })
  const url = await listen(app)
  const badIndex = 1_500_000
  let index = 0
  const body = new Readable({
    read () {
      if (index >= 3_000_000) { this.push(']'); this.push(null); return }
      const parts: string[] = []
      for (let end = index + 5000; index < end; index++) {
        parts.push(index === badIndex ? `{"id":${index}}` : `{"id":${index},"email":"user${index}@example.com"}`)
      }
      this.push((index === 5000 ? '[' : ',') + parts.join(','))
    }
  })
  const res = await undiciRequest(`${url}/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  const json = await res.body.json() as { code: string, message: string }
  t.equal(res.statusCode, 400)
  t.equal(json.code, 'FST_NEXURE_INVALID_ITEM')
  t.match(json.message, `Item ${badIndex} is invalid`)
  t.match(json.message, /email/)
  t.equal(seen, 1_500_000, 'the handler saw every batch before the invalid one')
})
