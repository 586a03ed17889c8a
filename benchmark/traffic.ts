import autocannon from 'autocannon'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ServerProcess } from './processes.js'
import { describeMachine, loadWarning, machine, type Machine } from './results.js'
import { barChart } from './svg-chart.js'
import { TRAFFIC_APPS, TRAFFIC_LABELS, trafficRows, type TrafficApp, type TrafficRow } from './traffic-rows.js'
import { median } from './units.js'

// `npm run bench:traffic`: what registering streamBody costs the ordinary traffic of an API.
// Fastify alone against Fastify + streamBody (default options), each server in a process of its
// own, autocannon in this one; rounds alternate A B A B on fresh servers, and each row reports the
// medians of req/s and p99 latency with their ratio.

const HELP = `Usage: npm run bench:traffic -- [options]

  --rows LIST        some of: ${trafficRows().map(r => r.name).join(',')} (default: all)
  --runs N           rounds per row, each on a fresh pair of servers (default 3)
  --duration S       seconds measured per round and app (default 5)
  --warmup S         seconds of load before each measurement, not counted (default 2)
  --connections N    autocannon connections (default 10)
  --control          a third server per round, Fastify alone again: its ratio to the first
                     (an A/A comparison) shows how far two identical servers differ here,
                     which is the noise floor of the req/s ratio
  --quick            a smoke run: 1 round of 1 s after 0.5 s of warm-up
  --out DIR          where to write traffic-<date>.json/.md and traffic.svg (default: benchmark/results)
  -h, --help         this text
`

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url))

interface Settings {
  rows: TrafficRow[]
  runs: number
  duration: number
  warmup: number
  connections: number
  control: boolean
  outDir: string
}

interface Round {
  requestsPerSecond: number
  p99Ms: number
  /**
   * The server's CPU time per request over the measured seconds, in microseconds: what the
   * server spent, whatever the rest of the machine was doing, where req/s is what it got.
   */
  cpuMicrosPerRequest: number
  errors: number
}

interface RowResult {
  name: string
  label: string
  bodyBytes: number
  rounds: Record<TrafficApp, Round[]>
  median: Record<TrafficApp, { requestsPerSecond: number, p99Ms: number, cpuMicrosPerRequest: number }>
  /** streamBody's req/s over Fastify alone's: 1 is no cost. */
  ratio: number
  /** Fastify alone's server CPU per request over streamBody's: 1 is no cost, as for `ratio`. */
  cpuRatio: number
  /** streamBody's p99 minus Fastify alone's, in ms. */
  p99DeltaMs: number
  /**
   * With `--control`: a second Fastify alone in every round, measured after streamBody, and its
   * req/s over the first's. Identical servers, so any distance from 1 is this machine's noise.
   */
  control?: { rounds: Round[], requestsPerSecond: number, ratio: number }
}

export interface TrafficReport {
  tool: 'nexure-bench-traffic'
  version: 2
  date: string
  command: string
  machine: Machine
  settings: Omit<Settings, 'rows' | 'outDir'> & { rows: string[] }
  rows: RowResult[]
  durationMs: number
}

function positive (value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${value}`)
  return n
}

function readSettings (argv: string[]): Settings | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      rows: { type: 'string' },
      runs: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      control: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  if (values.help === true) return null
  const quick = values.quick === true
  const all = trafficRows()
  const rows = values.rows === undefined
    ? all
    : values.rows.split(',').map(name => {
      const row = all.find(r => r.name === name)
      if (row === undefined) throw new Error(`unknown row ${JSON.stringify(name)} (known: ${all.map(r => r.name).join(', ')})`)
      return row
    })
  return {
    rows,
    runs: Math.round(positive(values.runs, 'runs', quick ? 1 : 3)),
    duration: positive(values.duration, 'duration', quick ? 1 : 5),
    warmup: positive(values.warmup, 'warmup', quick ? 0.5 : 2),
    connections: Math.round(positive(values.connections, 'connections', 10)),
    control: values.control === true,
    outDir: path.resolve(values.out ?? path.join(PACKAGE_ROOT, 'benchmark', 'results'))
  }
}

function load (server: ServerProcess, row: TrafficRow, seconds: number, connections: number): Promise<autocannon.Result> {
  return autocannon({
    url: `${server.url}${row.path}`,
    method: row.method,
    headers: row.headers,
    ...(row.body === null ? {} : { body: row.body }),
    connections,
    duration: seconds
  })
}

/** One request, to check that both apps give the same answer before their speed is compared. */
async function check (server: ServerProcess, row: TrafficRow): Promise<void> {
  const response = await fetch(`${server.url}${row.path}`, {
    method: row.method,
    headers: row.headers,
    ...(row.body === null ? {} : { body: row.body })
  })
  const text = await response.text()
  if (response.status !== 200) throw new Error(`${row.name}: status ${response.status}: ${text}`)
  if (row.items !== null && (JSON.parse(text) as { items: number }).items !== row.items) {
    throw new Error(`${row.name}: expected ${row.items} items, got ${text}`)
  }
}

/** The servers of one round, in order: Fastify alone, + streamBody, and with `--control` Fastify alone again. */
function roundApps (settings: Settings): Array<{ app: TrafficApp, control: boolean }> {
  const apps = TRAFFIC_APPS.map(app => ({ app, control: false }))
  return settings.control ? [...apps, { app: 'fastify', control: true }] : apps
}

async function round (app: TrafficApp, row: TrafficRow, settings: Settings): Promise<Round> {
  const server = await ServerProcess.start('traffic-server.js', [app], null)
  try {
    await check(server, row)
    await load(server, row, settings.warmup, settings.connections)
    const before = await server.ask({ type: 'cpu' }, 'cpu')
    const result = await load(server, row, settings.duration, settings.connections)
    const after = await server.ask({ type: 'cpu' }, 'cpu')
    const errors = result.errors + result.timeouts + result.non2xx
    if (errors > 0) throw new Error(`${row.name} on ${TRAFFIC_LABELS[app]}: ${errors} failed requests (${result.non2xx} non-2xx)`)
    // Two IPC answers ride inside the measured CPU time: a few microseconds in millions.
    const cpuMicrosPerRequest = (after.micros - before.micros) / Math.max(1, result.requests.total)
    return { requestsPerSecond: result.requests.average, p99Ms: result.latency.p99, cpuMicrosPerRequest, errors }
  } finally {
    await server.stop()
  }
}

function progress (line: string): void {
  process.stderr.write(line + '\n')
}

function micros (n: number): string {
  return n >= 1000 ? `${(n / 1000).toFixed(2)} ms` : `${n.toFixed(1)} us`
}

function kilo (n: number): string {
  return n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0)
}

export function trafficTable (report: TrafficReport): string {
  const control = report.settings.control === true
  const lines = [
    `| Request | Fastify alone (req/s, p99) | + streamBody (req/s, p99) | req/s ratio | p99 difference | server CPU per request | CPU ratio |${control ? ' A/A ratio (noise) |' : ''}`,
    `|---|--:|--:|--:|--:|--:|--:|${control ? '--:|' : ''}`
  ]
  for (const row of report.rows) {
    const a = row.median.fastify
    const b = row.median.nexure
    const sign = row.p99DeltaMs > 0 ? '+' : ''
    const cpu = `${micros(a.cpuMicrosPerRequest)} / ${micros(b.cpuMicrosPerRequest)}`
    const noise = control ? ` ${row.control === undefined ? '—' : `${row.control.ratio.toFixed(2)}x`} |` : ''
    lines.push(`| ${row.label} | ${kilo(a.requestsPerSecond)}, ${a.p99Ms} ms | ${kilo(b.requestsPerSecond)}, ${b.p99Ms} ms | ${row.ratio.toFixed(2)}x | ${sign}${row.p99DeltaMs} ms | ${cpu} | ${row.cpuRatio.toFixed(2)}x |${noise}`)
  }
  return lines.join('\n') + '\n'
}

function controlOf (rounds: Round[], firstRequestsPerSecond: number): NonNullable<RowResult['control']> {
  const requestsPerSecond = median(rounds.map(r => r.requestsPerSecond))
  return { rounds, requestsPerSecond, ratio: requestsPerSecond / firstRequestsPerSecond }
}

async function main (): Promise<number> {
  const settings = readSettings(process.argv.slice(2))
  if (settings === null) {
    process.stdout.write(HELP)
    return 0
  }
  const started = performance.now()
  const date = new Date().toISOString()
  const host = machine()
  progress(`nexure bench:traffic on ${describeMachine(host)}`)
  const busy = loadWarning(host)
  if (busy !== null) progress(busy)
  const apps = roundApps(settings)
  progress(`${settings.rows.length} rows × ${settings.runs} rounds × ${apps.length} servers${settings.control ? ' (Fastify alone twice: an A/A control)' : ''}; each: a fresh server, ${settings.warmup} s warm-up, ${settings.duration} s measured, ${settings.connections} connections`)
  const rows: RowResult[] = []
  const total = settings.rows.length * settings.runs * apps.length
  let done = 0
  for (const row of settings.rows) {
    const rounds: Record<TrafficApp, Round[]> = { fastify: [], nexure: [] }
    const controlRounds: Round[] = []
    for (let run = 1; run <= settings.runs; run++) {
      for (const { app, control } of apps) {
        const result = await round(app, row, settings)
        if (control) controlRounds.push(result)
        else rounds[app].push(result)
        done++
        const label = control ? `${TRAFFIC_LABELS[app]} (A/A)` : TRAFFIC_LABELS[app]
        progress(`[${String(done).padStart(String(total).length)}/${total}] ${row.name.padEnd(11)} ${label.padEnd(26)} round ${run}/${settings.runs}: ${kilo(result.requestsPerSecond)} req/s, p99 ${result.p99Ms} ms, ${micros(result.cpuMicrosPerRequest)} CPU/req  (${((performance.now() - started) / 1000).toFixed(0)} s)`)
      }
    }
    const medianOf = (app: TrafficApp): RowResult['median'][TrafficApp] => ({
      requestsPerSecond: median(rounds[app].map(r => r.requestsPerSecond)),
      p99Ms: median(rounds[app].map(r => r.p99Ms)),
      cpuMicrosPerRequest: median(rounds[app].map(r => r.cpuMicrosPerRequest))
    })
    const m = { fastify: medianOf('fastify'), nexure: medianOf('nexure') }
    rows.push({
      name: row.name,
      label: row.label,
      bodyBytes: row.body?.length ?? 0,
      rounds,
      median: m,
      ratio: m.nexure.requestsPerSecond / m.fastify.requestsPerSecond,
      cpuRatio: m.fastify.cpuMicrosPerRequest / m.nexure.cpuMicrosPerRequest,
      p99DeltaMs: m.nexure.p99Ms - m.fastify.p99Ms,
      ...(settings.control ? { control: controlOf(controlRounds, m.fastify.requestsPerSecond) } : {})
    })
  }
  const report: TrafficReport = {
    tool: 'nexure-bench-traffic',
    version: 2,
    date,
    command: ['npm run bench:traffic', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
    machine: host,
    settings: { rows: settings.rows.map(r => r.name), runs: settings.runs, duration: settings.duration, warmup: settings.warmup, connections: settings.connections, control: settings.control },
    rows,
    durationMs: performance.now() - started
  }
  const stamp = date.replace(/[:.]/g, '-')
  mkdirSync(settings.outDir, { recursive: true })
  const table = trafficTable(report)
  const jsonPath = path.join(settings.outDir, `traffic-${stamp}.json`)
  const chartPath = path.join(settings.outDir, 'traffic.svg')
  writeFileSync(jsonPath, JSON.stringify(report, null, 2) + '\n')
  writeFileSync(path.join(settings.outDir, `traffic-${stamp}.md`), `${table}\n${describeMachine(host)}, ${date}\n\`${report.command}\`\n`)
  writeFileSync(chartPath, barChart({
    title: 'req/s with streamBody registered, over Fastify alone (1.00 = no cost)',
    subtitle: `medians of ${settings.runs} alternating rounds · ${host.cpu} (${host.cores} cores), Node ${host.node} · ${date.slice(0, 10)}`,
    bars: rows.map(r => ({ label: r.label, value: r.ratio })),
    reference: 1,
    formatValue: v => `${v.toFixed(2)}x`
  }))
  process.stdout.write(`\n${table}\n${describeMachine(host)}; load average ${host.loadAverage}; ${date}; ${(report.durationMs / 1000).toFixed(0)} s\n\`${report.command}\`\n`)
  process.stdout.write(`results: ${jsonPath}\nchart: ${chartPath}\n`)
  return 0
}

try {
  process.exitCode = await main()
} catch (error) {
  process.stderr.write(`nexure bench:traffic: ${(error as Error).message}\n`)
  process.exitCode = 2
}
