import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { ConcurrencyReport } from '../benchmark/concurrency.js'
import { itemCount } from '../benchmark/json-body.js'

// bench:concurrency must send every body at once from its own process, check every answer, and
// report wall time and the server's peak above idle for each approach. Small sizes here; the
// figures of the issue come from `npm run bench:concurrency` (50 x 20MB).

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const out = mkdtempSync(path.join(tmpdir(), 'nexure-bench-concurrency-test-'))
t.teardown(() => rmSync(out, { recursive: true, force: true }))

t.test('the compiled concurrency kit counts every body right for both approaches', async t => {
  const script = path.join(root, 'dist', 'benchmark', 'concurrency.js')
  const { stdout } = await run(process.execPath, [script, '--streams', '4', '--size', '1500KB', '--runs', '2', '--batch-bytes', '64KB', '--out', out], { cwd: root, timeout: 120_000 })
  const files = readdirSync(out)
  const jsonFile = files.find(name => /^concurrency-.*\.json$/.test(name))
  t.ok(jsonFile, 'wrote the results as JSON')
  t.ok(files.some(name => /^concurrency-.*\.md$/.test(name)), 'and as Markdown')
  const report = JSON.parse(readFileSync(path.join(out, jsonFile ?? 'missing'), 'utf8')) as ConcurrencyReport
  t.equal(report.ok, true)
  t.equal(report.streams, 4)
  t.equal(report.itemsPerBody, itemCount(1500 * 1024))
  t.equal(report.budgetBytes, (64 + 4) * 1024 ** 2, '64 MiB + 1 MiB per stream')
  t.same(report.cells.map(c => c.approach), ['standard', 'nexure'])
  t.same(report.nexureTuning, { batchBytes: 65536 }, 'the tuning is in the report')
  for (const cell of report.cells) {
    t.equal(cell.failure, null, `${cell.approach}: no failure`)
    t.equal(cell.runs.length, 2, `${cell.approach}: two runs`)
    for (const r of cell.runs) {
      t.ok(r.ms > 0, `${cell.approach}: a wall time`)
      t.ok(r.baselineRssBytes > 10 * 1024 ** 2 && r.rssBytes >= r.baselineRssBytes, `${cell.approach}: a peak at or above the idle server's RSS`)
    }
    t.ok(cell.median !== null && cell.median.rssAboveIdleBytes >= 0, `${cell.approach}: a median`)
  }
  t.match(stdout, /\| 4 x 1\.5MB at once \| Runs \| Wall time \(s\) \| MB\/s \| Peak RSS above idle \(MiB\) \|/)
  t.match(stdout, /\| nexure \(batchBytes 64KB\) \| 2 \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| time [\d.]+x, RSS above idle [\d.]+x \| memory (yes|no), time (yes|no) \|/)
})

t.test('the kit\'s nexure server takes its tuning: batchBytes cuts its batches, Infinity included', async t => {
  const { buildApp, ROUTE } = await import('../benchmark/approaches.js')
  const { jsonArrayBody, itemCount: count } = await import('../benchmark/json-body.js')
  const size = 2 * 1024 ** 2
  const chunks: Buffer[] = []
  for await (const chunk of jsonArrayBody(size)) chunks.push(Buffer.from(chunk as Uint8Array))
  const body = Buffer.concat(chunks)
  const answers: Record<string, { items: number, batches: number }> = {}
  for (const [name, tuning] of Object.entries({ defaults: {}, '64KB': { batchBytes: 65536 }, Infinity: { batchSize: 100, batchBytes: Infinity } })) {
    const app = await buildApp('nexure', size + 1024, tuning)
    const res = await app.inject({ method: 'POST', url: ROUTE, headers: { 'content-type': 'application/json' }, payload: body })
    answers[name] = res.json()
    await app.close()
  }
  const items = count(size)
  t.same(answers.defaults, { items, batches: Math.ceil(items / 1000) }, '200-byte rows at the defaults: 1000 a batch')
  t.equal(answers['64KB']?.items, items)
  // A batch passes the bound by at most one parse run (32 KiB), never falls short of it.
  const batches = answers['64KB']?.batches ?? 0
  t.ok(batches >= Math.floor(size / (65536 + 32 * 1024)) && batches <= Math.ceil(size / 65536), `64 KiB: ${batches} batches, about one per 64 KiB of body`)
  t.same(answers.Infinity, { items, batches: Math.ceil(items / 100) }, 'batchBytes Infinity: by count only')
})

t.test('a body the server counts wrong fails the run', async t => {
  // The client checks each answer against the body it sent: point it at a server that answers
  // a fixed count, and the kit must say which body was wrong instead of reporting a time.
  const { default: Fastify } = await import('fastify')
  const { sendConcurrentJsonArrays } = await import('../benchmark/send-concurrent.js')
  const app = Fastify({ bodyLimit: 4 * 1024 ** 2 })
  app.post('/items', async request => ({ items: Array.isArray(request.body) && request.body.length > 0 ? request.body.length - 1 : 0 }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const result = await sendConcurrentJsonArrays({ kind: 'json-concurrent', url: `http://127.0.0.1:${port}/items`, size: 100 * 1024, streams: 3, timeoutMs: 30_000 })
  t.equal(result.ok, false)
  t.match(result.ok ? '' : result.error, /^body 1 of 3: the server counted \d+ items, expected \d+$/)
})
