import t from 'tap'
import { Readable } from 'node:stream'
import { request as undiciRequest } from 'undici'
import { bodyApp, listen } from './helpers/server.js'

const ITEM = '{"id":1234567,"name":"abcdefghij","ok":true}'

t.test('a 256 MB body to a handler that waits on each batch: the client is held back and memory stays bounded', async t => {
  const total = 256 * 1024 * 1024
  const app = await bodyApp(t, { batchSize: 1000 })
  let sent = 0
  let consumed = 0
  let maxGap = 0
  let peakRss = 0
  const baseRss = process.memoryUsage().rss
  app.post('/slow', async (request) => {
    let items = 0
    for await (const batch of request.batches()) {
      items += batch.length
      consumed = items * (ITEM.length + 1)
      maxGap = Math.max(maxGap, sent - consumed)
      if (items % 50000 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss)
      await new Promise(resolve => setImmediate(resolve))
    }
    return { items }
  })
  const url = await listen(app)
  let first = true
  let count = 0
  const body = new Readable({
    read () {
      if (sent >= total) { this.push(']'); this.push(null); return }
      const n = 2000
      const text = (first ? '[' : ',') + Array(n).fill(ITEM).join(',')
      first = false
      count += n
      sent += text.length
      this.push(text)
    }
  })
  const res = await undiciRequest(`${url}/slow`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  const result = await res.body.json() as { items: number }
  t.equal(res.statusCode, 200)
  t.equal(result.items, count, 'every item arrived')
  const growth = (peakRss - baseRss) / 1024 / 1024
  t.comment(`sent ${(sent / 1048576).toFixed(0)} MB; most sent ahead of the handler: ${(maxGap / 1048576).toFixed(1)} MB; RSS growth ${growth.toFixed(1)} MB`)
  t.ok(maxGap < 32 * 1024 * 1024, 'the client never got more than 32 MB ahead of the handler (socket buffers, not the body)')
  t.ok(growth < 128, 'RSS growth stays far below the body size')
})
