import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { APPROACH_LABELS, APPROACHES, isApproach, ROUTE, type Approach } from './approaches.js'
import { itemCount } from './json-body.js'
import { measureColdAndWarm, oneLine, type ColdWarmOutcome } from './measure.js'
import { describeMachine, loadWarning, machine, markdownTable, memoryChart, timeChart, type BenchReport, type CellResult, type PhaseResult } from './results.js'
import { sendJsonArray } from './send-json.js'
import { formatSize, mb, median, parseSize } from './units.js'

// `npm run bench`: Standard (buffer, then JSON.parse) vs a naive stream-json pipeline vs
// nexure's streamBody, each run in a fresh server process fed by a separate client process
// over loopback. Every process is measured twice: on its first large request (cold, as after a
// deploy) and on the same request again after warm-up requests (warm, as a server that has been
// up for a while). Runs alternate the approaches (A B C A B C ...), so a slow phase of a shared
// machine hits all of them alike. Prints a Markdown table, writes the results as JSON and SVG charts.

const HELP = `Usage: npm run bench -- [options]

  --sizes LIST              body sizes, e.g. 100KB,5MB,50MB,500MB (the default; KB = 1024 bytes)
  --runs N                  fresh server processes per size and approach, each measured cold and
                            warm (default: 5 up to 5MB, 3 up to 50MB, 1 above)
  --warmups N               requests between the cold and the warm measurement (default: as
                            many as carry 40MB, 2 to 20; their bodies are the measured size,
                            at most 20MB)
  --approaches LIST         standard,naive,nexure (the default)
  --max-old-space-size MB   V8 heap limit of the server processes (default: Node's own)
  --quick                   a smoke run: 100KB,2MB,10MB, fewer runs (about a minute)
  --out DIR                 where to write bench-<date>.json/.md and the charts
                            (default: benchmark/results)
  --docs                    also write the charts to docs/bench-time.svg and docs/bench-memory.svg
  --from FILE               measure nothing: print the table and draw the charts of a results
                            JSON written earlier
  -h, --help                this text
`

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DEFAULT_SIZES = '100KB,5MB,50MB,500MB'
// 2MB: over streamBody's 1 MiB threshold, so the quick run still takes nexure's streaming path.
const QUICK_SIZES = '100KB,2MB,10MB'
// Warm-up bodies are the measured size up to this: enough to warm every approach's streaming
// code (JIT tiers, pools, V8's heap sizing) without doubling the time of a 500MB run.
const WARMUP_MAX_BYTES = 20 * 1024 * 1024
// By default, warm-up requests carry about this much in all (at least 2, at most 20): two 2 MB
// bodies leave the JIT cold (nexure's 2 MB warm time was 111-137 ms after 2 requests, 34 ms in
// steady state, 20 requests after 4, on the same machine that day), and a long-running server
// has seen far more than that.
const WARMUP_TOTAL_BYTES = 40 * 1024 * 1024
const MAX_WARMUPS = 20

interface Settings {
  sizes: number[]
  approaches: Approach[]
  runsFor: (size: number) => number
  explicitRuns: boolean
  /** Warm-up requests before the warm measurement of a body of `size` bytes. */
  warmupsFor: (size: number) => number
  maxOldSpaceSizeMB: number | null
  outDir: string
  docs: boolean
  from: string | null
}

function readSettings (argv: string[]): Settings | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      sizes: { type: 'string' },
      runs: { type: 'string' },
      warmups: { type: 'string' },
      approaches: { type: 'string' },
      'max-old-space-size': { type: 'string' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      docs: { type: 'boolean', default: false },
      from: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  if (values.help === true) return null
  const quick = values.quick === true
  const sizes = (values.sizes ?? (quick ? QUICK_SIZES : DEFAULT_SIZES)).split(',').map(parseSize)
  const approaches = (values.approaches ?? APPROACHES.join(',')).split(',').map(name => {
    if (!isApproach(name)) throw new Error(`unknown approach ${JSON.stringify(name)} (known: ${APPROACHES.join(', ')})`)
    return name
  })
  let runs: number | null = null
  if (values.runs !== undefined) {
    runs = Number(values.runs)
    if (!Number.isInteger(runs) || runs < 1 || runs > 100) throw new Error(`--runs must be an integer from 1 to 100, got ${values.runs}`)
  }
  let warmups: number | null = null
  if (values.warmups !== undefined) {
    warmups = Number(values.warmups)
    if (!Number.isInteger(warmups) || warmups < 1 || warmups > MAX_WARMUPS) throw new Error(`--warmups must be an integer from 1 to ${MAX_WARMUPS}, got ${values.warmups}`)
  }
  const defaultWarmups = (size: number): number =>
    Math.min(MAX_WARMUPS, Math.max(2, Math.ceil(WARMUP_TOTAL_BYTES / Math.min(size, WARMUP_MAX_BYTES))))
  let maxOldSpaceSizeMB: number | null = null
  if (values['max-old-space-size'] !== undefined) {
    maxOldSpaceSizeMB = Number(values['max-old-space-size'])
    if (!Number.isInteger(maxOldSpaceSizeMB) || maxOldSpaceSizeMB < 16) throw new Error('--max-old-space-size must be an integer number of MB, at least 16')
  }
  const defaultRuns = (size: number): number => quick
    ? (size <= 2 * 1024 ** 2 ? 3 : 1)
    : (size <= 5 * 1024 ** 2 ? 5 : size <= 50 * 1024 ** 2 ? 3 : 1)
  return {
    sizes: [...new Set(sizes)].sort((a, b) => a - b),
    approaches,
    runsFor: size => runs ?? defaultRuns(size),
    explicitRuns: runs !== null,
    warmupsFor: size => warmups ?? defaultWarmups(size),
    maxOldSpaceSizeMB,
    outDir: path.resolve(values.out ?? path.join(PACKAGE_ROOT, 'benchmark', 'results')),
    docs: values.docs === true,
    from: values.from === undefined ? null : path.resolve(values.from)
  }
}

function timeoutFor (size: number): number {
  // Generous: the slowest approach (stream-json) runs at 10-25 MB/s on a small machine.
  return 60_000 + Math.ceil(size / (2 * 1024 ** 2)) * 1000
}

async function measureOnce (approach: Approach, size: number, settings: Settings): Promise<ColdWarmOutcome> {
  const timeoutMs = timeoutFor(size)
  const warmupSize = Math.min(size, WARMUP_MAX_BYTES)
  return measureColdAndWarm({
    script: 'server.js',
    args: [approach, String(size + 1024)],
    maxOldSpaceSizeMB: settings.maxOldSpaceSizeMB,
    job: baseUrl => ({ kind: 'json', url: `${baseUrl}${ROUTE}`, size, timeoutMs }),
    warmups: Array.from({ length: settings.warmupsFor(size) }, () =>
      (baseUrl: string) => sendJsonArray({ kind: 'json', url: `${baseUrl}${ROUTE}`, size: warmupSize, timeoutMs }))
  })
}

function summarize (phase: PhaseResult): void {
  if (phase.runs.length === 0) return
  phase.median = {
    ms: median(phase.runs.map(r => r.ms)),
    rssBytes: median(phase.runs.map(r => r.rssBytes)),
    heapBytes: median(phase.runs.map(r => r.heapBytes))
  }
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
  if (settings.from !== null) {
    const report = JSON.parse(readFileSync(settings.from, 'utf8')) as BenchReport
    if (report.tool !== 'nexure-bench') throw new Error(`${settings.from} is not a results file of this benchmark`)
    if (report.version !== 2) throw new Error(`${settings.from} was written by an older kit (one request per process, no cold and warm): run the benchmark again`)
    return writeOutputs(report, settings, false)
  }
  const started = performance.now()
  const date = new Date().toISOString()
  const host = machine()
  const total = settings.sizes.reduce((sum, size) => sum + settings.runsFor(size) * settings.approaches.length, 0)
  progress(`nexure bench, ${describeMachine(host)}`)
  const busy = loadWarning(host)
  if (busy !== null) progress(busy)
  progress(`sizes ${settings.sizes.map(formatSize).join(', ')}; server processes per size ${settings.sizes.map(s => `${formatSize(s)}: ${settings.runsFor(s)}`).join(', ')}` +
    `; server heap limit ${settings.maxOldSpaceSizeMB === null ? "Node's default" : `${settings.maxOldSpaceSizeMB} MB`}`)
  if (!settings.explicitRuns) progress('fewer runs at larger sizes, to keep the run short on a 2-core machine (--runs N to change)')
  progress(`each run: a fresh server process, the measured request (cold), warm-up requests of the same size up to ${formatSize(WARMUP_MAX_BYTES)} ` +
    `(${settings.sizes.map(s => `${formatSize(s)}: ${settings.warmupsFor(s)}`).join(', ')}), ` +
    'the measured request again (warm); measured requests come from a separate client process; approaches alternate')

  const cells: CellResult[] = []
  let done = 0
  for (const size of settings.sizes) {
    const planned = settings.runsFor(size)
    const row = settings.approaches.map(approach => {
      const cell: CellResult = {
        approach, sizeBytes: size, items: itemCount(size), runsPlanned: planned,
        cold: { runs: [], median: null }, warm: { runs: [], median: null },
        failure: null, failureDetail: null, failureExpected: false
      }
      cells.push(cell)
      return cell
    })
    for (let run = 1; run <= planned; run++) {
      for (const cell of row) {
        if (cell.failure !== null) continue
        done++
        const tag = `[${String(done).padStart(String(total).length)}/${total}] ${formatSize(size).padEnd(6)} ${APPROACH_LABELS[cell.approach].padEnd(12)} run ${run}/${planned}`
        const outcome = await measureOnce(cell.approach, size, settings)
        const elapsed = ((performance.now() - started) / 1000).toFixed(0)
        if (outcome.ok) {
          cell.cold.runs.push(outcome.cold)
          cell.warm.runs.push(outcome.warm)
          progress(`${tag}: cold ${outcome.cold.ms.toFixed(0)} ms, warm ${outcome.warm.ms.toFixed(0)} ms, RSS ${mb(outcome.cold.rssBytes)} / ${mb(outcome.warm.rssBytes)} MB, heap ${mb(outcome.cold.heapBytes)} / ${mb(outcome.warm.heapBytes)} MB  (${elapsed} s)`)
          continue
        }
        cell.failure = outcome.failure
        cell.failureDetail = `${outcome.phase}: ${outcome.detail}`
        cell.failureExpected = outcome.crashed && cell.approach === 'standard'
        progress(`${tag}: ${outcome.failure} (${outcome.phase})${cell.failureExpected ? ' (the buffering approach cannot take this size here)' : ''}  (${elapsed} s)`)
        progress(`    ${oneLine(outcome.detail, 300)}`)
        done += planned - run
      }
    }
    for (const cell of row) {
      // A failed cell shows why instead of a median, even where some runs came through.
      if (cell.failure !== null) continue
      summarize(cell.cold)
      summarize(cell.warm)
    }
  }

  const report: BenchReport = {
    tool: 'nexure-bench',
    version: 2,
    date,
    command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
    machine: host,
    settings: { sizes: settings.sizes, approaches: settings.approaches, maxOldSpaceSizeMB: settings.maxOldSpaceSizeMB, warmupRequests: Object.fromEntries(settings.sizes.map(s => [String(s), settings.warmupsFor(s)])), warmupBytes: WARMUP_MAX_BYTES },
    cells,
    durationMs: performance.now() - started,
    ok: cells.every(c => c.failure === null || c.failureExpected)
  }

  return writeOutputs(report, settings, true)
}

function writeOutputs (report: BenchReport, settings: Settings, fresh: boolean): number {
  const { date, machine: host, cells } = report
  const stamp = date.replace(/[:.]/g, '-')
  mkdirSync(settings.outDir, { recursive: true })
  const jsonPath = fresh ? path.join(settings.outDir, `bench-${stamp}.json`) : settings.from ?? ''
  const table = markdownTable(report)
  if (fresh) {
    writeFileSync(jsonPath, JSON.stringify(report, null, 2) + '\n')
    writeFileSync(path.join(settings.outDir, `bench-${stamp}.md`), `${table}\n${describeMachine(host)}, ${date}\n\`${report.command}\`\n`)
  }
  const charts = [path.join(settings.outDir, 'bench-time.svg'), path.join(settings.outDir, 'bench-memory.svg')]
  writeFileSync(charts[0] as string, timeChart(report))
  writeFileSync(charts[1] as string, memoryChart(report))
  if (settings.docs) {
    const docs = path.join(PACKAGE_ROOT, 'docs')
    mkdirSync(docs, { recursive: true })
    writeFileSync(path.join(docs, 'bench-time.svg'), timeChart(report))
    writeFileSync(path.join(docs, 'bench-memory.svg'), memoryChart(report))
    charts.push(path.join(docs, 'bench-time.svg'), path.join(docs, 'bench-memory.svg'))
  }

  process.stdout.write(`\n${table}\n${describeMachine(host)}; load average ${host.loadAverage}; ${date}; ${(report.durationMs / 1000).toFixed(0)} s\n\`${report.command}\`\n`)
  process.stdout.write(`results: ${jsonPath}\ncharts: ${charts.join(', ')}\n`)
  if (!report.ok) {
    const failed = cells.filter(c => c.failure !== null && !c.failureExpected)
    process.stderr.write(`\nFAILED:\n${failed.map(c => `  ${formatSize(c.sizeBytes)} ${APPROACH_LABELS[c.approach]}: ${c.failure ?? ''}: ${c.failureDetail ?? ''}`).join('\n')}\n`)
    return 1
  }
  return 0
}

try {
  process.exitCode = await main()
} catch (error) {
  process.stderr.write(`nexure bench: ${(error as Error).message}\n`)
  process.exitCode = 2
}
