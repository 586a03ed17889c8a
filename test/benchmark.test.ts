import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { text } from 'node:stream/consumers'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { itemCount, jsonArrayBody, ITEM_BYTES } from '../benchmark/json-body.js'
import { multipartFileBody } from '../benchmark/multipart-body.js'
import { selfTimes } from '../benchmark/cpu-profile.js'
import { formatSize, median, parseSize } from '../benchmark/units.js'

// The benchmark kit must measure what it says: bodies of the asked size with the announced
// item count, and a compiled `bench` that runs end to end and records every approach.

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const compiled = (name: string): string => path.join(root, 'dist', 'benchmark', name)
const scratch = mkdtempSync(path.join(tmpdir(), 'nexure-bench-test-'))
t.teardown(() => rmSync(scratch, { recursive: true, force: true }))

/** A fresh directory under this file's scratch dir. */
function dir (name: string): string {
  return mkdtempSync(path.join(scratch, `${name}-`))
}

/**
 * Starts a compiled kit command at once, so the slow ones (each forks a few servers) overlap;
 * the subtest that checks it awaits the result. A non-zero exit rejects there.
 */
function startKit (args: string[]): Promise<{ stdout: string, stderr: string }> {
  const result = run(process.execPath, args, { cwd: root, timeout: 120_000 })
  result.catch(() => {})
  return result
}

const benchOut = dir('bench')
const bench = startKit([compiled('bench.js'), '--sizes', '100KB,1200KB', '--runs', '1', '--out', benchOut])
const oomOut = dir('oom')
const oom = startKit([compiled('bench.js'), '--sizes', '40MB', '--runs', '1', '--approaches', 'standard,nexure', '--max-old-space-size', '32', '--out', oomOut])
const uploadOut = dir('upload')
const uploadTemp = dir('upload-temp')
const upload = startKit([compiled('upload.js'), '--sizes', '3MB', '--runs', '1', '--out', uploadOut, '--temp-root', uploadTemp])
// The import kit needs PostgreSQL for two of its approaches: with a server in PG* (CI has one,
// and test/examples-postgres.test.ts fails there without it) all three run, else SQLite alone.
const importApproaches = process.env.PGHOST === undefined ? ['nexure-sqlite'] : ['nexure-postgres', 'standard-postgres', 'nexure-sqlite']
const importOut = dir('import')
// After the JSON and upload kits: five kits at once on two cores slow each past its timeout.
const importKit = Promise.allSettled([bench, upload]).then(() =>
  startKit([compiled('import.js'), '--sizes', '2MB', '--runs', '1', '--approaches', importApproaches.join(','), '--out', importOut]))
const profileOut = dir('profiles')
const profiles = startKit([compiled('profile-cpu.js'), '--approach', 'nexure', '--size', '3MB', '--out', profileOut]).then(async cpu => {
  const memory = await startKit(['--expose-gc', compiled('profile-memory.js'), '--approach', 'standard', '--size', '3MB', '--out', profileOut])
  return { cpu, memory }
})
profiles.catch(() => {})

t.test('bench:parse answers --help without measuring, and refuses an unknown flag or a bad count', async t => {
  const help = await run(process.execPath, [compiled('parse.js'), '--help'], { cwd: root, timeout: 30_000 })
  t.match(help.stdout, /^Usage: npm run bench:parse -- \[options\]/)
  t.match(help.stdout, /--stream-json-limit S/)
  t.notMatch(help.stdout, /run\(s\) per approach/, 'nothing measured')
  for (const [args, message] of [[['--size', '5MB'], /Unknown option '--size'/], [['--runs', 'three'], /--runs must be an integer of at least 1, got "three"/], [['--sizes', '5XB'], /not a size: 5XB/]] as const) {
    const failed = await run(process.execPath, [compiled('parse.js'), ...args], { cwd: root, timeout: 30_000 }).then(() => null, (error: { code: number, stderr: string }) => error)
    t.equal(failed?.code, 2, `${args.join(' ')}: exit status 2`)
    t.match(failed?.stderr ?? '', message, `${args.join(' ')}: says why`)
  }
})

t.test('sizes parse and print in binary units', async t => {
  t.equal(parseSize('100KB'), 100 * 1024)
  t.equal(parseSize('5MB'), 5 * 1024 ** 2)
  t.equal(parseSize('1.5GB'), 1.5 * 1024 ** 3)
  t.equal(parseSize('2gib'), 2 * 1024 ** 3)
  t.equal(parseSize('4096'), 4096)
  t.throws(() => parseSize('5 parsecs'), /not a size/)
  t.throws(() => parseSize('1'), /too small/)
  t.equal(formatSize(500 * 1024 ** 2), '500MB')
  t.equal(formatSize(100 * 1024), '100KB')
  t.equal(median([3, 1, 2]), 2)
  t.equal(median([4, 1, 3, 2]), 2.5)
})

t.test('the JSON body has exactly the asked size and the announced items', async t => {
  for (const size of [2, 3, ITEM_BYTES + 2, ITEM_BYTES + 3, 2 * ITEM_BYTES + 3, 100 * 1024, 1024 ** 2 + 17]) {
    const body = Buffer.from(await text(jsonArrayBody(size)))
    t.equal(body.length, size, `${size}: byte length`)
    const items = JSON.parse(body.toString('utf8')) as Array<{ id: number, name: string }>
    t.equal(items.length, itemCount(size), `${size}: item count`)
    items.forEach((item, index) => { if (item.id !== index) t.fail(`${size}: item ${index} has id ${item.id}`) })
  }
  const names = (JSON.parse(await text(jsonArrayBody(20 * ITEM_BYTES))) as Array<{ name: string }>).map(i => i.name)
  t.ok(names.some(name => Buffer.byteLength(name) > name.length), 'some rows carry multi-byte UTF-8')
})

t.test('the multipart body announces its exact length and carries the whole file', async t => {
  const size = 200 * 1024 + 5
  const { body, contentType, contentLength } = multipartFileBody(size)
  const chunks: Buffer[] = []
  for await (const chunk of body) chunks.push(chunk as Buffer)
  const bytes = Buffer.concat(chunks)
  t.equal(bytes.length, contentLength)
  const boundary = /boundary=(.+)$/.exec(contentType)?.[1] ?? ''
  const start = bytes.indexOf('\r\n\r\n') + 4
  const end = bytes.lastIndexOf(`\r\n--${boundary}--`)
  t.equal(end - start, size, 'the file part holds exactly size bytes')
})

t.test('self time is summed per function from the profile samples', async t => {
  const frame = (functionName: string, lineNumber: number) => ({ functionName, url: 'file:///app/x.js', lineNumber, columnNumber: 0 })
  const profile = {
    nodes: [{ id: 1, callFrame: frame('(root)', -1) }, { id: 2, callFrame: frame('parse', 9) }, { id: 3, callFrame: frame('scan', 19) }, { id: 4, callFrame: frame('parse', 9) }],
    startTime: 0,
    endTime: 10_000,
    samples: [2, 3, 4, 3],
    timeDeltas: [0, 4000, 1000, 2000]
  }
  const times = selfTimes(profile, '/app')
  t.same(times.map(e => [e.functionName, e.location, e.selfMs]), [
    ['parse', 'x.js:10:1', 6], // 4 ms (node 2) + 2 ms (node 4, same function on another path)
    ['scan', 'x.js:20:1', 4] // 1 ms + 3 ms to the end of the profile
  ])
  t.equal(times[0]?.percent, 60)
})

t.test('the compiled bench runs every approach and records correct counts', async t => {
  t.ok(existsSync(compiled('bench.js')), 'dist/benchmark/bench.js exists (npm run build)')
  const out = benchOut
  const { stdout, stderr } = await bench
  const jsonFile = readdirSync(out).find(name => /^bench-.*\.json$/.test(name))
  t.ok(jsonFile, 'wrote the results as JSON')
  type Run = { ms: number, rssBytes: number, heapBytes: number }
  const report = JSON.parse(readFileSync(path.join(out, jsonFile ?? 'missing'), 'utf8')) as {
    ok: boolean
    version: number
    machine: { node: string, v8?: string }
    settings: { warmupRequests: Record<string, number> }
    cells: Array<{ approach: string, sizeBytes: number, items: number, failure: string | null, cold: { runs: Run[], median: Run | null }, warm: { runs: Run[], median: Run | null } }>
  }
  t.equal(report.ok, true, 'no approach failed', { stderr: stderr.slice(-2000) })
  t.equal(report.version, 2)
  // By default, warm-up requests carry 40 MB in all, 2 to 20 of them: 20 at both sizes here.
  t.same(report.settings.warmupRequests, { 102400: 20, 1228800: 20 }, 'warm-up requests by volume by default')
  t.same(report.cells.map(c => `${c.approach}@${c.sizeBytes}`).sort(),
    ['naive@102400', 'naive@1228800', 'nexure@102400', 'nexure@1228800', 'standard@102400', 'standard@1228800'])
  for (const cell of report.cells) {
    t.equal(cell.failure, null, `${cell.approach} ${cell.sizeBytes}: no failure`)
    t.equal(cell.items, itemCount(cell.sizeBytes), `${cell.approach} ${cell.sizeBytes}: expected item count recorded`)
    for (const phase of ['cold', 'warm'] as const) {
      t.equal(cell[phase].runs.length, 1, `${cell.approach} ${cell.sizeBytes} ${phase}: one run`)
      const [only] = cell[phase].runs
      t.ok(only !== undefined && only.ms > 0 && only.rssBytes > 10 * 1024 ** 2 && only.heapBytes > 1024 ** 2, `${cell.approach} ${cell.sizeBytes} ${phase}: plausible time and peaks`)
      t.same(cell[phase].median, { ms: only?.ms, rssBytes: only?.rssBytes, heapBytes: only?.heapBytes }, `${cell.approach} ${cell.sizeBytes} ${phase}: the median of one run is that run`)
    }
  }
  t.match(stdout, /\| Size \| Approach \| Runs \| Cold time \(ms\) \| Warm time \(ms\) \| Warm MB\/s \| Peak RSS cold \/ warm \(MB\) \| Peak heap cold \/ warm \(MB\) \| vs Standard, cold \| vs Standard, warm \|/)
  t.match(stdout, /\| 1\.2MB \| nexure \| 1 \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \/ [\d.]+ \| [\d.]+ \/ [\d.]+ \| speed [\d.]+x, RSS [\d.]+x \| speed [\d.]+x, RSS [\d.]+x \|/)
  t.match(stderr, /each run: a fresh server process, the measured request \(cold\), warm-up requests of the same size up to 20MB \(100KB: 20, 1.2MB: 20\)/)
  // Memory figures depend on the Node.js line (V8 sizes its heap differently from one to the
  // next): the header, the footer under the table and the results say which one ran.
  const runsOn = `Node ${process.version} (V8 ${process.versions.v8}) on `
  t.equal(stderr.split('\n')[0]?.startsWith(`nexure bench, ${runsOn}`), true, 'the header names the Node version', { header: stderr.split('\n')[0] })
  t.ok(stdout.includes(runsOn), 'the footer under the table names the Node version')
  t.equal(report.machine.node, process.version)
  t.equal(report.machine.v8, process.versions.v8)
  for (const chart of ['bench-time.svg', 'bench-memory.svg']) {
    const svg = readFileSync(path.join(out, chart), 'utf8')
    t.match(svg, /^<svg[^>]+xmlns="http:\/\/www\.w3\.org\/2000\/svg"/, `${chart} is an SVG`)
    // Time: warm and cold per approach; memory: warm per approach.
    t.equal((svg.match(/<polyline /g) ?? []).length, chart === 'bench-time.svg' ? 6 : 3, `${chart}: lines per approach`)
  }
})

t.test('a server that runs out of memory is reported in its cell, and nexure does not', async t => {
  // A 32 MB heap cannot hold a 40MB body as one string: Standard dies, which the table shows
  // (an expected outcome, so the run still exits 0); nexure takes it in constant memory.
  const { stdout } = await oom
  t.match(stdout, /\| 40MB \| Standard \| 0 \| OOM \| OOM \| OOM \| OOM \/ OOM \| OOM \/ OOM \| — \| — \|/)
  t.match(stdout, /\| 40MB \| nexure \| 1 \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \/ [\d.]+ \| [\d.]+ \/ [\d.]+ \| Standard: OOM \| Standard: OOM \|/)
})

t.test('the compiled upload bench leaves no files behind and checks every byte', async t => {
  t.ok(existsSync(compiled('upload.js')), 'dist/benchmark/upload.js exists (npm run build)')
  await upload
  const jsonFile = readdirSync(uploadOut).find(name => /^bench-upload-.*\.json$/.test(name))
  const report = JSON.parse(readFileSync(path.join(uploadOut, jsonFile ?? 'missing'), 'utf8')) as {
    ok: boolean
    cells: Array<{ approach: string, failure: string | null, leftOnDisk: { files: number } | null, leftAfterAbort: { files: number } | null }>
  }
  t.equal(report.ok, true)
  t.same(report.cells.map(c => c.approach).sort(), ['nexure', 'nexure-s3', 'save-request-files', 'to-buffer'])
  for (const cell of report.cells) {
    t.equal(cell.failure, null, `${cell.approach}: no failure`)
    t.equal(cell.leftOnDisk?.files, 0, `${cell.approach}: nothing left on disk after the response`)
    t.equal(cell.leftAfterAbort?.files, 0, `${cell.approach}: nothing left on disk after an aborted upload`)
  }
  t.same(readdirSync(uploadTemp), [], 'the per-run temp dirs are removed')
})

t.test('the compiled import bench counts the rows in the table, for every approach', async t => {
  const { stdout } = await importKit
  const jsonFile = readdirSync(importOut).find(name => /^bench-import-.*\.json$/.test(name))
  const report = JSON.parse(readFileSync(path.join(importOut, jsonFile ?? 'missing'), 'utf8')) as {
    ok: boolean
    cells: Array<{ approach: string, failure: string | null, runs: Array<{ ms: number, rssBytes: number, rows: number }> }>
  }
  t.equal(report.ok, true)
  t.same(report.cells.map(c => c.approach), importApproaches)
  // ~60-byte rows: a 2 MB body holds about 33,000.
  const rows = report.cells[0]?.runs[0]?.rows ?? 0
  t.ok(rows > 30_000 && rows < 40_000, `${rows} rows in a 2 MB body`)
  for (const cell of report.cells) {
    t.equal(cell.failure, null, `${cell.approach}: no failure`)
    t.equal(cell.runs[0]?.rows, rows, `${cell.approach}: the same rows found in the table`)
    t.ok((cell.runs[0]?.ms ?? 0) > 0 && (cell.runs[0]?.rssBytes ?? 0) > 10 * 1024 ** 2, `${cell.approach}: plausible time and peak`)
  }
  t.match(stdout, /\| Size \| Approach \| Rows \| Median time \(s\) \| Rows\/s \| MB\/s \| Peak RSS \(MB\) \| vs Standard \|/)
})

t.test('the profilers write a CPU profile DevTools can load and a memory timeline', async t => {
  const out = profileOut
  const { cpu, memory } = await profiles
  const profile = JSON.parse(readFileSync(path.join(out, 'nexure-3MB.cpuprofile'), 'utf8')) as { nodes: unknown[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }
  t.ok(profile.nodes.length > 0 && profile.samples.length > 0, 'the profile has nodes and samples')
  t.equal(profile.samples.length, profile.timeDeltas.length, 'one time delta per sample')
  t.match(cpu.stdout, /Top 10 functions by self time/)
  t.equal(cpu.stdout.split('\n').filter(line => /^\| [\d.]+ \| [\d.]+ \| /.test(line)).length, 10, 'ten functions listed')

  const timeline = JSON.parse(readFileSync(path.join(out, 'memory-standard-3MB.json'), 'utf8')) as { items: number, samples: Array<{ ms: number, rss: number, heapUsed: number }>, peaks: { rss: number } }
  t.equal(timeline.items, itemCount(3 * 1024 ** 2))
  t.ok(timeline.samples.length >= 2, 'sampled at least at the start and the end')
  t.ok(timeline.samples.every((s, i) => i === 0 || s.ms >= (timeline.samples[i - 1]?.ms ?? 0)), 'samples in time order')
  t.ok(timeline.peaks.rss >= Math.max(...timeline.samples.map(s => s.rss)), 'the peak covers every sample')
  t.match(readFileSync(path.join(out, 'memory-standard-3MB.svg'), 'utf8'), /^<svg[^>]+xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
  t.match(memory.stdout, /peak RSS [\d.]+ MB/)
})
