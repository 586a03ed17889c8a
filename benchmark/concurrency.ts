import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { APPROACH_LABELS, isApproach, ROUTE, type Approach, type NexureTuning } from './approaches.js'
import { itemCount } from './json-body.js'
import { measureInFreshServer, oneLine, type RunResult } from './measure.js'
import { describeMachine, loadWarning, machine, type Machine } from './results.js'
import { sendJsonArray } from './send-json.js'
import { formatSize, integerFlag as integer, mb, median, parseSize } from './units.js'

// `npm run bench:concurrency`: many large bodies at once. A fresh server process per run takes
// --streams JSON arrays of --size bytes each, all sent at the same time by a separate client
// process (one connection per body); every answer's item count is checked. Reported: the wall
// time from the first byte of the first body to the last answer, and the server's peak RSS above
// its idle, warmed-up self, for Fastify's default parser beside nexure's streamBody, alternating
// the approaches run by run.

const HELP = `Usage: npm run bench:concurrency -- [options]

  --streams N               bodies sent at once (default 50)
  --size SIZE               bytes per body (default 20MB; KB = 1024 bytes)
  --approaches LIST         standard,nexure (the default); naive is known too, and slow
  --runs N                  fresh server processes per approach, alternating (default 3)
  --batch-size N            nexure's batchSize (default: the kit's 1000)
  --batch-bytes SIZE        nexure's batchBytes, e.g. 64KB, or Infinity (default: nexure's own)
  --max-old-space-size MB   V8 heap limit of the server processes (default: Node's own)
  --out DIR                 where concurrency-<date>.json/.md go (default benchmark/results)
  -h, --help                this text
`

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url))
// Before the measurement, this many bodies one after the other, so that what is measured is a
// warm server (the JIT, the pools, V8's heap sizing), as under sustained load.
const WARMUPS = 2
const WARMUP_MAX_BYTES = 20 * 1024 * 1024
// The budget for the peak above idle: a fixed part plus a part per concurrent stream.
const BUDGET_FIXED_BYTES = 64 * 1024 ** 2
const BUDGET_PER_STREAM_BYTES = 1024 ** 2

interface Settings {
  streams: number
  size: number
  approaches: Approach[]
  runs: number
  maxOldSpaceSizeMB: number | null
  /** nexure's options beside the kit's; nothing set measures the defaults. */
  tuning: NexureTuning
  outDir: string
}

export interface ConcurrencyCell {
  approach: Approach
  runsPlanned: number
  runs: RunResult[]
  failure: string | null
  failureDetail: string | null
  median: { ms: number, rssAboveIdleBytes: number, idleRssBytes: number, heapBytes: number } | null
}

export interface ConcurrencyReport {
  tool: 'nexure-bench-concurrency'
  version: 1
  date: string
  command: string
  machine: Machine
  streams: number
  sizeBytes: number
  /** nexure's options beside the kit's (`batchSize: 1000`); Infinity is written as null. */
  nexureTuning: NexureTuning
  /** Items in each body (the server's answer for every one of them is checked). */
  itemsPerBody: number
  budgetBytes: number
  cells: ConcurrencyCell[]
  durationMs: number
  ok: boolean
}

function readSettings (argv: string[]): Settings | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      streams: { type: 'string', default: '50' },
      size: { type: 'string', default: '20MB' },
      approaches: { type: 'string', default: 'standard,nexure' },
      runs: { type: 'string', default: '3' },
      'batch-size': { type: 'string' },
      'batch-bytes': { type: 'string' },
      'max-old-space-size': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  if (values.help) return null
  const approaches = values.approaches.split(',').map(name => {
    if (!isApproach(name)) throw new Error(`unknown approach ${JSON.stringify(name)}`)
    return name
  })
  const tuning: NexureTuning = {}
  if (values['batch-size'] !== undefined) tuning.batchSize = integer('batch-size', values['batch-size'], 1, 1e9)
  if (values['batch-bytes'] !== undefined) tuning.batchBytes = /^infinity$/i.test(values['batch-bytes']) ? Infinity : parseSize(values['batch-bytes'])
  return {
    streams: integer('streams', values.streams, 1, 1000),
    size: parseSize(values.size),
    approaches,
    runs: integer('runs', values.runs, 1, 100),
    maxOldSpaceSizeMB: values['max-old-space-size'] === undefined ? null : integer('max-old-space-size', values['max-old-space-size'], 16, 1 << 20),
    tuning,
    outDir: path.resolve(values.out ?? path.join(PACKAGE_ROOT, 'benchmark', 'results'))
  }
}

async function measureOnce (approach: Approach, settings: Settings): ReturnType<typeof measureInFreshServer<null>> {
  const total = settings.size * settings.streams
  // Generous: the default parser at ~40 MB/s on a small machine, plus start-up and the warm-ups.
  const timeoutMs = 120_000 + Math.ceil(total / (1024 ** 2)) * 100
  const warmupSize = Math.min(settings.size, WARMUP_MAX_BYTES)
  return measureInFreshServer({
    script: 'server.js',
    args: [approach, String(settings.size + 1024), JSON.stringify(settings.tuning)],
    maxOldSpaceSizeMB: settings.maxOldSpaceSizeMB,
    warmup: async baseUrl => {
      let last = await sendJsonArray({ kind: 'json', url: `${baseUrl}${ROUTE}`, size: warmupSize, timeoutMs })
      for (let i = 1; i < WARMUPS && last.ok; i++) last = await sendJsonArray({ kind: 'json', url: `${baseUrl}${ROUTE}`, size: warmupSize, timeoutMs })
      return last
    },
    job: baseUrl => ({ kind: 'json-concurrent', url: `${baseUrl}${ROUTE}`, size: settings.size, streams: settings.streams, timeoutMs }),
    after: async () => null
  })
}

/** The approach's name, with nexure's tuning when there is one: `nexure (batchBytes 64KB)`. */
function label (approach: Approach, tuning: NexureTuning): string {
  const set = Object.entries(tuning).map(([name, value]) => `${name} ${name === 'batchBytes' ? (value === Infinity || value === null ? 'Infinity' : formatSize(value as number)) : String(value)}`)
  return approach === 'nexure' && set.length > 0 ? `${APPROACH_LABELS[approach]} (${set.join(', ')})` : APPROACH_LABELS[approach]
}

function ratio (value: number, base: number): string {
  return `${(value / base).toFixed(2)}x`
}

export function concurrencyTable (report: ConcurrencyReport): string {
  const lines = [
    `| ${report.streams} x ${formatSize(report.sizeBytes)} at once | Runs | Wall time (s) | MB/s | Peak RSS above idle (MiB) | per stream (MiB) | Idle RSS (MiB) | vs Standard | within ${mb(report.budgetBytes)} MiB and Standard's time |`,
    '|---|--:|--:|--:|--:|--:|--:|---|---|'
  ]
  const standard = report.cells.find(c => c.approach === 'standard')?.median ?? null
  for (const cell of report.cells) {
    const m = cell.median
    const name = label(cell.approach, report.nexureTuning ?? {})
    if (m === null) {
      lines.push(`| ${name} | ${cell.runs.length} | ${cell.failure ?? 'failed'} | | | | | | |`)
      continue
    }
    const versus = cell.approach === 'standard' ? 'baseline' : standard === null ? '—' : `time ${ratio(m.ms, standard.ms)}, RSS above idle ${ratio(m.rssAboveIdleBytes, standard.rssAboveIdleBytes)}`
    const within = cell.approach === 'standard' || standard === null
      ? '—'
      : `${m.rssAboveIdleBytes <= report.budgetBytes ? 'memory yes' : 'memory no'}, ${m.ms <= standard.ms ? 'time yes' : 'time no'}`
    lines.push(`| ${name} | ${cell.runs.length} | ${(m.ms / 1000).toFixed(2)} | ${(report.sizeBytes * report.streams / 1024 ** 2 / (m.ms / 1000)).toFixed(1)} | ` +
      `${mb(m.rssAboveIdleBytes)} | ${(m.rssAboveIdleBytes / report.streams / 1024 ** 2).toFixed(2)} | ${mb(m.idleRssBytes)} | ${versus} | ${within} |`)
  }
  return lines.join('\n') + '\n'
}

function progress (line: string): void {
  process.stderr.write(line + '\n')
}

async function main (): Promise<number> {
  const settings = readSettings(process.argv.slice(2))
  if (settings === null) {
    process.stdout.write(HELP)
    return 0
  }
  const started = performance.now()
  const host = machine()
  const report: ConcurrencyReport = {
    tool: 'nexure-bench-concurrency',
    version: 1,
    date: new Date().toISOString(),
    command: ['npm run bench:concurrency', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
    machine: host,
    streams: settings.streams,
    sizeBytes: settings.size,
    nexureTuning: settings.tuning,
    itemsPerBody: itemCount(settings.size),
    budgetBytes: BUDGET_FIXED_BYTES + settings.streams * BUDGET_PER_STREAM_BYTES,
    cells: settings.approaches.map(approach => ({ approach, runsPlanned: settings.runs, runs: [], failure: null, failureDetail: null, median: null })),
    durationMs: 0,
    ok: false
  }
  progress(`nexure bench:concurrency, ${describeMachine(host)}`)
  const busy = loadWarning(host)
  if (busy !== null) progress(busy)
  progress(`${settings.streams} bodies of ${formatSize(settings.size)} at once from a client process; each run a fresh server, ${WARMUPS} warm-up bodies one at a time, then the measurement; approaches alternate`)
  for (let run = 1; run <= settings.runs; run++) {
    for (const cell of report.cells) {
      if (cell.failure !== null) continue
      const outcome = await measureOnce(cell.approach, settings)
      const tag = `run ${run}/${settings.runs} ${label(cell.approach, settings.tuning).padEnd(12)}`
      if (!outcome.ok) {
        cell.failure = outcome.failure
        cell.failureDetail = outcome.detail
        progress(`${tag}: ${outcome.failure}\n    ${oneLine(outcome.detail, 300)}`)
        continue
      }
      cell.runs.push(outcome.run)
      progress(`${tag}: ${(outcome.run.ms / 1000).toFixed(2)} s, peak RSS ${mb(outcome.run.rssBytes)} MiB (+${mb(outcome.run.rssBytes - outcome.run.baselineRssBytes)} above idle)  (${((performance.now() - started) / 1000).toFixed(0)} s)`)
    }
  }
  for (const cell of report.cells) {
    if (cell.failure !== null || cell.runs.length === 0) continue
    cell.median = {
      ms: median(cell.runs.map(r => r.ms)),
      rssAboveIdleBytes: median(cell.runs.map(r => r.rssBytes - r.baselineRssBytes)),
      idleRssBytes: median(cell.runs.map(r => r.baselineRssBytes)),
      heapBytes: median(cell.runs.map(r => r.heapBytes))
    }
  }
  report.durationMs = performance.now() - started
  // The default parser running out of memory is a finding; nexure failing is a failure.
  report.ok = report.cells.every(c => c.failure === null || c.approach === 'standard')
  const stamp = report.date.replace(/[:.]/g, '-')
  mkdirSync(settings.outDir, { recursive: true })
  const table = concurrencyTable(report)
  const jsonPath = path.join(settings.outDir, `concurrency-${stamp}.json`)
  writeFileSync(jsonPath, JSON.stringify(report, null, 2) + '\n')
  writeFileSync(path.join(settings.outDir, `concurrency-${stamp}.md`), `${table}\n${describeMachine(host)}; load average ${host.loadAverage}; ${report.date}\n\`${report.command}\`\n`)
  process.stdout.write(`\n${table}\n${describeMachine(host)}; load average ${host.loadAverage}; ${report.date}; ${(report.durationMs / 1000).toFixed(0)} s\n\`${report.command}\`\nresults: ${jsonPath}\n`)
  return report.ok ? 0 : 1
}

try {
  process.exitCode = await main()
} catch (error) {
  process.stderr.write(`nexure bench:concurrency: ${(error as Error).message}\n`)
  process.exitCode = 2
}
