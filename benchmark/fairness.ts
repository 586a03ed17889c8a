import { fork, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { itemCount } from './json-body.js'
import { classifyCrash, describeExit, runClient, scriptPath, type ExitInfo } from './processes.js'
import { describeMachine, machine, type Machine } from './results.js'
import { sendJsonArray } from './send-json.js'
import { formatSize, mb, parseSize } from './units.js'
import type { FairnessServerMessage, FairnessServerRequest, HealthMessage, HealthResult } from './fairness-protocol.js'

// `npm run bench:fairness`: does one huge body starve everyone else? A server process takes a
// JSON array of --size bytes (from a client process) while a third process calls GET /health
// every --interval ms; the health calls' latencies and the server's own longest event-loop
// block are reported for Fastify's default parser (which holds the event loop for the whole
// JSON.parse of the body) and for nexure's streamBody (which parses in bounded steps).

const HELP = `Usage: npm run bench:fairness -- [options]

  --size SIZE               body size (default 500MB; KB = 1024 bytes)
  --approach LIST           standard,nexure (the default), or one of them
  --interval MS             time between two GET /health calls (default 10)
  --max-old-space-size MB   V8 heap limit of the server (default 8192: the default parser needs
                            ~2 GB at 500MB)
  --out FILE                where the JSON results go (default benchmark/results/fairness.json)
  -h, --help                this text
`

const APPROACHES = ['standard', 'nexure'] as const
type FairnessApproach = typeof APPROACHES[number]
const LABELS: Record<FairnessApproach, string> = { standard: 'Fastify default parser', nexure: 'nexure streamBody' }
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const WARMUP_BYTES = 2 * 1024 * 1024

interface Settings {
  size: number
  approaches: FairnessApproach[]
  intervalMs: number
  maxOldSpaceSizeMB: number
  out: string
}

export interface FairnessRun {
  approach: FairnessApproach
  ok: boolean
  failure: string | null
  /** Client-side time of the big request, first byte sent to last byte of the answer. */
  bodyMs: number | null
  items: number | null
  health: {
    answered: number
    sent: number
    failed: number
    firstError: string | null
    p50Ms: number
    p99Ms: number
    maxMs: number
    maxClientLagMs: number
    /** Calls over 50 ms: [sent at, ms since the health client started; latency ms]. */
    slow: Array<[number, number]>
  } | null
  server: { maxBlockMs: number, p99BlockMs: number, rssBytes: number, heapBytes: number, baselineRssBytes: number } | null
}

export interface FairnessReport {
  tool: 'nexure-bench-fairness'
  version: 1
  date: string
  command: string
  machine: Machine
  sizeBytes: number
  items: number
  intervalMs: number
  runs: FairnessRun[]
}

function readSettings (argv: string[]): Settings | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      size: { type: 'string', default: '500MB' },
      approach: { type: 'string', default: APPROACHES.join(',') },
      interval: { type: 'string', default: '10' },
      'max-old-space-size': { type: 'string', default: '8192' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  if (values.help) return null
  const approaches = values.approach.split(',').map(a => a.trim())
  for (const approach of approaches) {
    if (!(APPROACHES as readonly string[]).includes(approach)) throw new Error(`unknown approach ${JSON.stringify(approach)} (known: ${APPROACHES.join(', ')})`)
  }
  const positive = (name: string, text: string): number => {
    if (!/^\d+$/.test(text) || Number(text) < 1) throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(text)}`)
    return Number(text)
  }
  return {
    size: parseSize(values.size),
    approaches: approaches as FairnessApproach[],
    intervalMs: positive('interval', values.interval),
    maxOldSpaceSizeMB: positive('max-old-space-size', values['max-old-space-size']),
    out: path.resolve(values.out ?? path.join(PACKAGE_ROOT, 'benchmark', 'results', 'fairness.json'))
  }
}

/** Nearest-rank percentile of an ascending array. */
export function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number
}

function round (ms: number): number {
  return Math.round(ms * 10) / 10
}

interface Child {
  process: ChildProcess
  exited: Promise<ExitInfo>
  stderr: () => string
}

function start (script: string, args: string[], execArgv: string[]): Child {
  const child = fork(scriptPath(script), args, { execArgv, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
  let text = ''
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (chunk: string) => { text = (text + chunk).slice(-64 * 1024) })
  const exited = new Promise<ExitInfo>(resolve => child.once('exit', (code, signal) => resolve({ code, signal })))
  return { process: child, exited, stderr: () => text }
}

/** Waits for the child's next message of `type` (sending `message` first, if given); rejects if it dies. */
function expect<M extends { type: string }, T extends M['type']> (child: Child, type: T, message?: object): Promise<Extract<M, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (reply: M): void => {
      if (reply.type !== type) return
      child.process.off('message', onMessage)
      resolve(reply as Extract<M, { type: T }>)
    }
    child.process.on('message', onMessage)
    child.exited.then(info => {
      child.process.off('message', onMessage)
      reject(new Error(`${path.basename(child.process.spawnargs[1] ?? 'child')} exited (${describeExit(info)}): ${child.stderr().trim().slice(-2000)}`))
    })
    if (message !== undefined) child.process.send(message)
  })
}

async function stop (child: Child): Promise<void> {
  if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL')
  await child.exited
}

async function measure (approach: FairnessApproach, settings: Settings): Promise<FairnessRun> {
  const run: FairnessRun = { approach, ok: false, failure: null, bodyMs: null, items: null, health: null, server: null }
  const server = start('fairness-server.js', [approach, String(settings.size + 1024)], ['--expose-gc', `--max-old-space-size=${settings.maxOldSpaceSizeMB}`])
  let health: Child | null = null
  try {
    const { port } = await expect<FairnessServerMessage, 'listening'>(server, 'listening')
    const base = `http://127.0.0.1:${port}`
    const warm = await sendJsonArray({ kind: 'json', url: `${base}/items`, size: WARMUP_BYTES, timeoutMs: 60_000 })
    if (!warm.ok) throw new Error(`warm-up failed: ${warm.error}`)
    health = start('fairness-health-client.js', [`${base}/health`, String(settings.intervalMs)], [])
    await expect<HealthMessage, 'ready'>(health, 'ready')
    await expect<FairnessServerMessage, 'started'>(server, 'started', { type: 'start' } satisfies FairnessServerRequest)
    const body = await runClient({ kind: 'json', url: `${base}/items`, size: settings.size, timeoutMs: 30 * 60_000 })
    const result = await expect<HealthMessage, 'result'>(health, 'result', { type: 'stop' })
    run.health = summarize(result)
    if (!body.ok) {
      const exit = await Promise.race([server.exited, new Promise<null>(resolve => setTimeout(() => resolve(null), 3000))])
      run.failure = exit === null ? body.error : `${classifyCrash(server.stderr(), exit)} (${body.error})`
      return run
    }
    run.bodyMs = round(body.ms)
    run.items = body.items
    const report = await expect<FairnessServerMessage, 'report'>(server, 'report', { type: 'report' } satisfies FairnessServerRequest)
    run.server = {
      maxBlockMs: report.eventLoop.maxBlockMs,
      p99BlockMs: report.eventLoop.p99BlockMs,
      rssBytes: report.rssBytes,
      heapBytes: report.heapBytes,
      baselineRssBytes: report.baselineRssBytes
    }
    run.ok = run.health.failed === 0
    if (!run.ok) run.failure = `${run.health.failed} health checks failed: ${run.health.firstError ?? ''}`
    return run
  } catch (error) {
    run.failure = (error as Error).message
    return run
  } finally {
    if (health !== null) await stop(health)
    await stop(server)
  }
}

function summarize (result: HealthResult): NonNullable<FairnessRun['health']> {
  const sorted = [...result.latenciesMs].sort((a, b) => a - b)
  return {
    answered: sorted.length,
    sent: result.sent,
    failed: result.failed,
    firstError: result.firstError,
    p50Ms: round(percentile(sorted, 50)),
    p99Ms: round(percentile(sorted, 99)),
    maxMs: round(sorted.at(-1) ?? Number.NaN),
    maxClientLagMs: round(result.maxClientLagMs),
    slow: result.slow
  }
}

export function fairnessTable (report: FairnessReport): string {
  const lines = [
    `| ${formatSize(report.sizeBytes)} body | GET /health p50 | p99 | max | answered | longest event-loop block (server) | body time | peak RSS (server) |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|'
  ]
  for (const run of report.runs) {
    const h = run.health
    const s = run.server
    const cell = (value: number | undefined, unit: string): string => value === undefined || Number.isNaN(value) ? '–' : `${value} ${unit}`
    const label = run.ok ? LABELS[run.approach] : `${LABELS[run.approach]} (failed: ${run.failure ?? '?'})`
    lines.push(`| ${label} | ${cell(h?.p50Ms, 'ms')} | ${cell(h?.p99Ms, 'ms')} | ${cell(h?.maxMs, 'ms')} | ${h === null ? '–' : `${h.answered}/${h.sent}`} | ` +
      `${cell(s?.maxBlockMs, 'ms')} | ${run.bodyMs === null ? '–' : `${(run.bodyMs / 1000).toFixed(1)} s`} | ${s === null ? '–' : `${mb(s.rssBytes)} MiB`} |`)
  }
  return lines.join('\n')
}

async function main (): Promise<number> {
  const settings = readSettings(process.argv.slice(2))
  if (settings === null) {
    process.stdout.write(HELP)
    return 0
  }
  const report: FairnessReport = {
    tool: 'nexure-bench-fairness',
    version: 1,
    date: new Date().toISOString(),
    command: ['npm run bench:fairness --', ...process.argv.slice(2)].join(' '),
    machine: machine(),
    sizeBytes: settings.size,
    items: itemCount(settings.size),
    intervalMs: settings.intervalMs,
    runs: []
  }
  process.stderr.write(`fairness: ${formatSize(settings.size)} (${report.items} items), GET /health every ${settings.intervalMs} ms; ${describeMachine(report.machine)}\n`)
  for (const approach of settings.approaches) {
    process.stderr.write(`  ${LABELS[approach]}... `)
    const run = await measure(approach, settings)
    report.runs.push(run)
    process.stderr.write(run.ok ? `p99 ${run.health?.p99Ms ?? '?'} ms, max ${run.health?.maxMs ?? '?'} ms\n` : `failed: ${run.failure ?? '?'}\n`)
  }
  mkdirSync(path.dirname(settings.out), { recursive: true })
  writeFileSync(settings.out, `${JSON.stringify(report, null, 2)}\n`)
  process.stdout.write(`${fairnessTable(report)}\n\nResults: ${path.relative(process.cwd(), settings.out)}\n`)
  // The default parser dying at a large size is a finding, not a failure of the benchmark.
  return report.runs.every(run => run.ok || run.approach === 'standard') ? 0 : 1
}

process.exitCode = await main()
