import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { itemCount } from '../benchmark/json-body.js'
import type { FairnessReport } from '../benchmark/fairness.js'
import { Readable } from 'node:stream'
import { Agent, request } from 'undici'
import { bodyApp, listen } from './helpers/server.js'

// A huge body must not starve the other requests of a single-threaded server: nexure parses in
// steps bounded by bytes, so while a 100 MB array streams in, the event loop keeps turning and
// a light route keeps answering. (Fastify's default parser, by contrast, holds the event loop
// for the whole JSON.parse of the body: hundreds of ms at 50 MB, seconds at 500 MB; see
// `npm run bench:fairness`.) Client and server share this process, so the bounds are wide.

const BODY_BYTES = 100 * 1024 * 1024
const HEALTH_INTERVAL_MS = 10
const ITEM = '{"id":123456,"name":"Zoë Kravitz","email":"user@example.com","active":true,"score":12.5,"tags":["a","b"]}'

function arrayBody (bytes: number): { body: Readable, items: () => number } {
  let sent = 0
  let items = 0
  const body = new Readable({
    read () {
      if (sent >= bytes) {
        this.push(']')
        this.push(null)
        return
      }
      let text = items === 0 ? '[' : ','
      for (let i = 0; i < 500; i++) text += (i === 0 ? '' : ',') + ITEM
      items += 500
      sent += Buffer.byteLength(text)
      this.push(text)
    }
  })
  return { body, items: () => items }
}

t.test('GET /health keeps answering while a 100 MB body streams in, and no step blocks the event loop for long', async t => {
  const app = await bodyApp(t, { batchSize: 1000 })
  app.get('/health', async () => ({ ok: true }))
  app.post('/items', async (request) => {
    let items = 0
    for await (const batch of request.batches()) items += batch.length
    return { items }
  })
  const url = await listen(app)
  const health = new Agent({ connections: 64 })
  const uploader = new Agent({ connections: 1 })
  t.teardown(async () => { await health.close(); await uploader.close() })
  const ping = async (): Promise<void> => { (await request(`${url}/health`, { dispatcher: health })).body.dump() }
  await ping()

  const delay = monitorEventLoopDelay({ resolution: 5 })
  const latencies: number[] = []
  let uploading = true
  const pings: Array<Promise<void>> = []
  const timer = setInterval(() => {
    const started = performance.now()
    pings.push(request(`${url}/health`, { dispatcher: health }).then(async response => {
      await response.body.text()
      if (response.statusCode === 200 && uploading) latencies.push(performance.now() - started)
    }))
  }, HEALTH_INTERVAL_MS)

  const { body, items } = arrayBody(BODY_BYTES)
  const started = performance.now()
  delay.enable()
  const response = await request(`${url}/items`, { method: 'POST', dispatcher: uploader, headers: { 'content-type': 'application/json' }, body })
  const answer = await response.body.json() as { items: number }
  uploading = false
  delay.disable()
  const durationMs = performance.now() - started
  clearInterval(timer)
  await Promise.all(pings)

  t.equal(response.statusCode, 200)
  t.equal(answer.items, items(), 'every item was counted')
  const maxBlockMs = delay.max / 1e6
  latencies.sort((a, b) => a - b)
  const planned = Math.floor(durationMs / HEALTH_INTERVAL_MS)
  const p99 = latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] ?? Infinity
  t.comment(`${(BODY_BYTES / 2 ** 20).toFixed(0)} MiB in ${durationMs.toFixed(0)} ms; longest event-loop block ${maxBlockMs.toFixed(1)} ms; ` +
    `${latencies.length}/${planned} health checks answered during the upload, p50 ${latencies[latencies.length >> 1]?.toFixed(1) ?? '-'} ms, p99 ${p99.toFixed(1)} ms`)
  // The goal (under 20 ms) is measured by `npm run bench:fairness`, with server and client in
  // processes of their own. Here the client shares the process and another test file shares the
  // two cores, so scheduling and GC show up as blocks too: the bound only has to separate
  // bounded steps from one parse of the whole body (JSON.parse of 100 MB holds the loop ~1 s).
  t.ok(maxBlockMs < 300, `longest event-loop block ${maxBlockMs.toFixed(1)} ms (< 300 ms)`)
  // A server that parses the body in one go answers none of them until the body has ended.
  t.ok(latencies.length >= planned / 4, `${latencies.length} of ${planned} health checks answered while the body was streaming`)
})

t.test('the compiled fairness benchmark runs both approaches end to end and records what it measured', async t => {
  const script = fileURLToPath(new URL('../dist/benchmark/fairness.js', import.meta.url))
  if (!existsSync(script)) throw new Error(`${script} is missing: run \`npm run build\` first (npm test does)`)
  const dir = mkdtempSync(path.join(tmpdir(), 'nexure-fairness-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const out = path.join(dir, 'fairness.json')
  const { stdout } = await promisify(execFile)(process.execPath, [script, '--size', '8MB', '--max-old-space-size', '512', '--out', out], { timeout: 60_000 })
  t.match(stdout, /\| Fastify default parser \|/)
  t.match(stdout, /\| nexure streamBody \|/)
  const report = JSON.parse(readFileSync(out, 'utf8')) as FairnessReport
  t.equal(report.sizeBytes, 8 * 1024 * 1024)
  t.equal(report.items, itemCount(8 * 1024 * 1024))
  t.same(report.runs.map(run => [run.approach, run.ok, run.items]), [['standard', true, report.items], ['nexure', true, report.items]])
  for (const run of report.runs) {
    t.ok(run.health !== null && run.health.answered > 0 && run.health.answered === run.health.sent, `${run.approach}: every health check answered`)
    t.ok(run.health !== null && run.health.p50Ms <= run.health.p99Ms && run.health.p99Ms <= run.health.maxMs, `${run.approach}: p50 <= p99 <= max`)
    t.ok(run.server !== null && run.server.maxBlockMs > 0 && run.server.rssBytes > 0, `${run.approach}: the server reported its event loop and memory`)
  }
})
