import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { measureGarbage } from '../benchmark/gc.js'
import { jsonArrayOf, trafficRows } from '../benchmark/traffic-rows.js'

// The ordinary-traffic kit: `npm run bench:traffic` must measure both apps on the same requests
// and get the same answers from them; and a small body must not leave much more garbage with
// streamBody than with Fastify's own parser (the figures of the full run are in the README).

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const out = mkdtempSync(path.join(tmpdir(), 'nexure-traffic-test-'))
t.teardown(() => rmSync(out, { recursive: true, force: true }))

t.test('the request bodies have the sizes their rows name', async t => {
  for (const size of [1024, 10 * 1024, 100 * 1024, 1024 * 1024]) {
    const body = jsonArrayOf(size)
    t.equal(body.length, size)
    t.ok(Array.isArray(JSON.parse(body.toString())))
  }
  const names = trafficRows().map(r => r.name)
  t.same(names, ['get', 'json-1kb', 'json-10kb', 'json-100kb', 'json-1mb', 'ndjson-10kb', 'schema-1kb', 'gzip-1kb'])
})

t.test('the compiled bench:traffic measures both apps on every row it is given', async t => {
  // Rows that take different routes on both apps (no body, a string parser, a schema, a
  // decompressing hook); json-1kb's route is schema-1kb's without the schema.
  const rows = 'get,ndjson-10kb,schema-1kb,gzip-1kb'
  const { stdout } = await run(process.execPath, [path.join(root, 'dist', 'benchmark', 'traffic.js'),
    '--rows', rows, '--runs', '1', '--duration', '0.3', '--warmup', '0.1', '--connections', '2', '--out', out], { cwd: root, timeout: 120_000 })
  const file = readdirSync(out).find(name => /^traffic-.*\.json$/.test(name))
  t.ok(file, 'wrote the results as JSON')
  const report = JSON.parse(readFileSync(path.join(out, file ?? 'missing'), 'utf8')) as {
    rows: Array<{ name: string, ratio: number, cpuRatio: number, median: Record<string, { requestsPerSecond: number, cpuMicrosPerRequest: number }> }>
  }
  t.same(report.rows.map(r => r.name), rows.split(','))
  for (const row of report.rows) {
    t.ok(row.median.fastify!.requestsPerSecond > 0 && row.median.nexure!.requestsPerSecond > 0, `${row.name}: both apps answered`)
    t.ok(Number.isFinite(row.ratio) && row.ratio > 0, `${row.name}: a ratio`)
    // A request costs the server microseconds, not nothing and not seconds.
    for (const app of ['fastify', 'nexure']) {
      const cpu = row.median[app]!.cpuMicrosPerRequest
      t.ok(cpu > 1 && cpu < 1_000_000, `${row.name}: the ${app} server's CPU per request (${cpu.toFixed(1)} us)`)
    }
    t.ok(Number.isFinite(row.cpuRatio) && row.cpuRatio > 0, `${row.name}: a CPU ratio`)
  }
  t.match(stdout, /\| Request \| Fastify alone \(req\/s, p99\) \| \+ streamBody \(req\/s, p99\) \| req\/s ratio \| p99 difference \| server CPU per request \| CPU ratio \|/)
  t.match(readFileSync(path.join(out, 'traffic.svg'), 'utf8'), /^<svg[^>]+xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
})

t.test('--control adds a second Fastify alone to every round, and its ratio to the first as the noise column', async t => {
  const dir = mkdtempSync(path.join(tmpdir(), 'nexure-traffic-control-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const { stdout, stderr } = await run(process.execPath, [path.join(root, 'dist', 'benchmark', 'traffic.js'),
    '--rows', 'json-1kb', '--runs', '2', '--duration', '0.3', '--warmup', '0.1', '--connections', '2', '--control', '--out', dir], { cwd: root, timeout: 120_000 })
  const file = readdirSync(dir).find(name => /^traffic-.*\.json$/.test(name))
  const report = JSON.parse(readFileSync(path.join(dir, file ?? 'missing'), 'utf8')) as {
    settings: { control: boolean }
    rows: Array<{ rounds: Record<string, unknown[]>, median: { fastify: { requestsPerSecond: number } }, control?: { rounds: Array<{ requestsPerSecond: number }>, requestsPerSecond: number, ratio: number } }>
  }
  t.equal(report.settings.control, true)
  const control = report.rows[0]?.control
  t.ok(control, 'the row has its control')
  t.equal(control?.rounds.length, 2, 'one control server per round')
  t.equal(report.rows[0]?.rounds.fastify?.length, 2, 'the first Fastify alone still has its own rounds')
  t.ok(control !== undefined && control.requestsPerSecond > 0, 'the control answered')
  t.equal(control?.ratio, (control?.requestsPerSecond ?? 0) / (report.rows[0]?.median.fastify.requestsPerSecond ?? 1), 'the ratio is the control over the first')
  t.match(stdout, /\| CPU ratio \| A\/A ratio \(noise\) \|\n\|---\|--:\|--:\|--:\|--:\|--:\|--:\|--:\|/)
  t.match(stderr, /\[6\/6\] json-1kb +Fastify alone \(A\/A\)/, 'progress counts three servers a round')
})

t.test('100 KB bodies: no more major GCs with streamBody than with Fastify\'s own parser, with a wide margin', async t => {
  const rounds = await measureGarbage(100 * 1024, 1500, 1)
  const major = (app: string): number => rounds.filter(r => r.app === app).reduce((sum, r) => sum + r.major, 0)
  t.ok(major('nexure') <= 1.5 * major('fastify') + 2, `major GCs: Fastify ${major('fastify')}, streamBody ${major('nexure')}`)
})
