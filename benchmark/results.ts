import { availableParallelism, cpus, loadavg, release, totalmem, type as osType } from 'node:os'
import { APPROACH_LABELS, type Approach } from './approaches.js'
import type { RunResult } from './measure.js'
import { lineChart, type ChartSeries } from './svg-chart.js'
import { formatSize, mb } from './units.js'

// The benchmark's results: the JSON it writes, the Markdown table it prints, the SVG charts.

/** The measured requests of one phase (cold or warm) of a cell, one per fresh server process. */
export interface PhaseResult {
  runs: RunResult[]
  median: { ms: number, rssBytes: number, heapBytes: number } | null
}

export interface CellResult {
  approach: Approach
  sizeBytes: number
  items: number
  /** Server processes asked for; fewer are recorded when one fails (the rest are not attempted). */
  runsPlanned: number
  /** The first request of each fresh server process: what a server sees after a deploy or restart. */
  cold: PhaseResult
  /** The same request after warm-up requests on the same process: what a long-running server sees. */
  warm: PhaseResult
  /** Why this approach could not take this size: `OOM`, `ERR_STRING_TOO_LONG`, an error... */
  failure: string | null
  /** The error message, the server's last words. */
  failureDetail: string | null
  /** Whether the failure is one the comparison expects (the buffering approach running out of memory). */
  failureExpected: boolean
}

export interface Machine {
  cpu: string
  cores: number
  memoryGiB: number
  os: string
  /** `process.version`: the Node.js line sets V8's heap sizing, so memory figures depend on it. */
  node: string
  /** `process.versions.v8`; absent in results files written before it was recorded. */
  v8?: string
  /** 1-minute load average when the run started: other work on the machine skews timings. */
  loadAverage: number
}

export interface BenchReport {
  tool: 'nexure-bench'
  /** 2: cold and warm per cell (1, before: one request after a 2 MB warm-up). */
  version: 2
  date: string
  command: string
  machine: Machine
  settings: {
    sizes: number[]
    approaches: Approach[]
    maxOldSpaceSizeMB: number | null
    /** Requests between the cold and the warm measurement, per body size in bytes, and the largest of their bodies. */
    warmupRequests: Record<string, number>
    warmupBytes: number
  }
  cells: CellResult[]
  durationMs: number
  ok: boolean
}

export const APPROACH_COLORS: Record<Approach, string> = {
  standard: '#d62728',
  naive: '#ff7f0e',
  nexure: '#2ca02c'
}

export function machine (): Machine {
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    os: `${osType()} ${release()}`,
    node: process.version,
    v8: process.versions.v8,
    loadAverage: Number((loadavg()[0] ?? 0).toFixed(2))
  }
}

export function describeMachine (m: Machine): string {
  return `Node ${m.node}${m.v8 === undefined ? '' : ` (V8 ${m.v8})`} on ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}`
}

/** A warning when the machine was already busy: the timings then measure the other work too. */
export function loadWarning (m: Machine): string | null {
  return m.loadAverage > m.cores / 2
    ? `warning: the machine is busy (load average ${m.loadAverage} on ${m.cores} cores); timings will be noisy`
    : null
}

function ms (value: number): string {
  return value < 100 ? value.toFixed(1) : Math.round(value).toString()
}

function ratio (value: number, base: number): string {
  const r = value / base
  return r >= 10 ? `${r.toFixed(0)}x` : `${r.toFixed(2)}x`
}

/** Standard's time over this approach's (higher is faster), and this peak RSS over Standard's. */
function versusStandard (cell: CellResult, standard: CellResult | undefined, phase: 'cold' | 'warm'): string {
  const mine = cell[phase].median
  if (mine === null) return '—'
  if (cell.approach === 'standard') return 'baseline'
  if (standard === undefined) return 'not measured'
  const base = standard[phase].median
  if (base === null) return `Standard: ${standard.failure ?? 'failed'}`
  return `speed ${ratio(base.ms, mine.ms)}, RSS ${ratio(mine.rssBytes, base.rssBytes)}`
}

function runsLabel (cell: CellResult): string {
  const cold = cell.cold.runs.length
  const warm = cell.warm.runs.length
  return cold === warm ? String(cold) : `${cold} / ${warm}`
}

/**
 * Cold and warm side by side: each row is one approach at one size, medians over fresh server
 * processes (the Runs column), each process measured on its first request and again once warm.
 */
export function markdownTable (report: BenchReport): string {
  const lines = [
    '| Size | Approach | Runs | Cold time (ms) | Warm time (ms) | Warm MB/s | Peak RSS cold / warm (MB) | Peak heap cold / warm (MB) | vs Standard, cold | vs Standard, warm |',
    '|---|---|--:|--:|--:|--:|--:|--:|---|---|'
  ]
  for (const size of report.settings.sizes) {
    const cells = report.cells.filter(c => c.sizeBytes === size)
    const standard = cells.find(c => c.approach === 'standard')
    for (const cell of cells) {
      const why = cell.failure ?? 'failed'
      const cold = cell.cold.median
      const warm = cell.warm.median
      const pair = (pick: (m: NonNullable<PhaseResult['median']>) => string): string =>
        `${cold === null ? why : pick(cold)} / ${warm === null ? why : pick(warm)}`
      lines.push([
        '', formatSize(size), APPROACH_LABELS[cell.approach], runsLabel(cell),
        cold === null ? why : ms(cold.ms),
        warm === null ? why : ms(warm.ms),
        warm === null ? why : (size / 1024 ** 2 / (warm.ms / 1000)).toFixed(1),
        pair(m => mb(m.rssBytes)),
        pair(m => mb(m.heapBytes)),
        versusStandard(cell, standard, 'cold'),
        versusStandard(cell, standard, 'warm'),
        ''
      ].join(' | ').trim())
    }
  }
  return lines.join('\n') + '\n'
}

function series (report: BenchReport, phase: 'cold' | 'warm', pick: (m: NonNullable<PhaseResult['median']>) => number): ChartSeries[] {
  return report.settings.approaches.map(approach => ({
    name: `${APPROACH_LABELS[approach]}, ${phase}`,
    color: APPROACH_COLORS[approach],
    dashed: phase === 'cold',
    points: report.cells.filter(c => c.approach === approach).map(c => {
      const m = c[phase].median
      return m === null ? { x: c.sizeBytes, y: null, failure: c.failure ?? 'failed' } : { x: c.sizeBytes, y: pick(m) }
    })
  }))
}

function subtitle (report: BenchReport, what: string): string {
  const m = report.machine
  return `${what}, medians over fresh server processes · ${m.cpu} (${m.cores} cores), Node ${m.node} · ${report.date.slice(0, 10)}`
}

export function timeChart (report: BenchReport): string {
  return lineChart({
    title: 'Time to take a JSON array body (lower is better)',
    subtitle: subtitle(report, 'warm (solid) and first request (dashed)'),
    xLabel: 'Body size',
    yLabel: 'Median time (log scale)',
    series: [...series(report, 'warm', m => m.ms), ...series(report, 'cold', m => m.ms)],
    formatX: formatSize,
    formatY: y => y >= 1000 ? `${y / 1000} s` : `${y} ms`
  })
}

export function memoryChart (report: BenchReport): string {
  return lineChart({
    title: 'Peak server RSS, warm (lower is better)',
    subtitle: subtitle(report, 'warm'),
    xLabel: 'Body size',
    yLabel: 'Peak RSS (log scale)',
    series: series(report, 'warm', m => m.rssBytes / 1024 ** 2),
    formatX: formatSize,
    formatY: y => `${y} MB`
  })
}
