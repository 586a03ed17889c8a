import t, { type Test } from 'tap'
import { Readable } from 'node:stream'
import { request } from 'undici'
import { bodyApp, listen } from './helpers/server.js'
import type { StreamBodyOptions } from '../lib/index.js'

// Adaptive throttling (`underPressure`): while the event loop is held up past the bound, nexure
// stops reading bodies and counts the time in `request.streamStats.throttledMs`; when the loop
// recovers, it reads on, and the body still arrives whole. Something else in the process blocks
// the event loop in bursts (40 ms of every 100 ms) for the whole upload.

const ITEM = '{"id":1,"name":"a row","values":[1,2,3]}'
const ITEMS = 400_000

function arrayBody (count: number): Readable {
  let next = 0
  return new Readable({
    read () {
      if (next >= count) {
        this.push(null)
        return
      }
      const n = Math.min(2000, count - next)
      let text = next === 0 ? '[' : ','
      text += Array(n).fill(ITEM).join(',')
      next += n
      if (next === count) text += ']'
      this.push(text)
    }
  })
}

function blockInBursts (busyMs: number, everyMs: number): () => void {
  const timer = setInterval(() => {
    const until = performance.now() + busyMs
    while (performance.now() < until) { /* hold the event loop, as a CPU-heavy request would */ }
  }, everyMs)
  return () => clearInterval(timer)
}

interface Answer { items: number, throttledMs: number, durationMs: number }

async function upload (t: Test, options: StreamBodyOptions): Promise<Answer> {
  const app = await bodyApp(t, options)
  app.post('/items', async (request) => {
    let items = 0
    for await (const batch of request.batches()) items += batch.length
    const stats = request.streamStats!
    return { items, throttledMs: stats.throttledMs, durationMs: stats.durationMs }
  })
  const url = await listen(app)
  const stop = blockInBursts(40, 100)
  try {
    const response = await request(`${url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: arrayBody(ITEMS) })
    t.equal(response.statusCode, 200)
    return await response.body.json() as Answer
  } finally {
    stop()
  }
}

t.test('under event-loop pressure intake is held, then released, and the body arrives whole', async t => {
  const answer = await upload(t, { underPressure: { maxEventLoopDelay: 20, sampleInterval: 25 } })
  t.comment(`throttled ${answer.throttledMs} ms of ${answer.durationMs.toFixed(0)} ms`)
  t.equal(answer.items, ITEMS, 'every item arrived')
  t.ok(answer.throttledMs > 0, `throttledMs = ${answer.throttledMs}`)
  t.ok(answer.throttledMs < answer.durationMs, 'intake resumed between the bursts')
})

t.test('without underPressure the same bursts throttle nothing', async t => {
  const answer = await upload(t, {})
  t.equal(answer.items, ITEMS)
  t.equal(answer.throttledMs, 0)
})
