import { availableParallelism, cpus, loadavg, release, totalmem, type as osType } from 'node:os'
import { APPROACH_LABELS, type Approach } from './approaches.js'
import type { RunResult } from './measure.js'
import { lineChart, type ChartSeries } from './svg-chart.js'
import { formatSize, mb } from './units.js'

// The benchmark's results: the JSON it writes, the Markdown table it prints, the SVG charts.

export interface CellResult {
  approach: Approach
  sizeBytes: number
  items: number
  /** Runs asked for; fewer are recorded when one fails (the rest are not attempted). */
  runsPlanned: number
  runs: RunResult[]
  /** Why this approach could not take this size: `OOM`, `ERR_STRING_TOO_LONG`, an error... */
  failure: string | null
  /** The error message, the server's last words. */
  failureDetail: string | null
  /** Whether the failure is one the comparison expects (the buffering approach running out of memory). */
  failureExpected: boolean
  median: { ms: number, rssBytes: number, heapBytes: number } | null
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
  version: 1
  date: string
  command: string
  machine: Machine
  settings: {
    sizes: number[]
    approaches: Approach[]
    maxOldSpaceSizeMB: number | null
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

/** The `vs Standard` cell: this approach's median over Standard's at the same size. */
function versusStandard (cell: CellResult, standard: CellResult | undefined): string {
  if (cell.approach === 'standard') return cell.median === null ? '—' : 'baseline'
  if (cell.median === null) return '—'
  if (standard === undefined) return 'not measured'
  if (standard.median === null) return `Standard: ${standard.failure ?? 'failed'}`
  return `time ${ratio(cell.median.ms, standard.median.ms)}, RSS ${ratio(cell.median.rssBytes, standard.median.rssBytes)}, heap ${ratio(cell.median.heapBytes, standard.median.heapBytes)}`
}

export function markdownTable (report: BenchReport): string {
  const lines = [
    '| Size | Approach | Median time (ms) | Peak RSS (MB) | Peak heap (MB) | vs Standard |',
    '|---|---|--:|--:|--:|---|'
  ]
  for (const size of report.settings.sizes) {
    const cells = report.cells.filter(c => c.sizeBytes === size)
    const standard = cells.find(c => c.approach === 'standard')
    for (const cell of cells) {
      const runs = cell.runs.length === 1 ? ' (1 run)' : ''
      const label = APPROACH_LABELS[cell.approach]
      if (cell.median === null) {
        const why = cell.failure ?? 'failed'
        lines.push(`| ${formatSize(size)} | ${label} | ${why} | ${why} | ${why} | ${versusStandard(cell, standard)} |`)
      } else {
        lines.push(`| ${formatSize(size)} | ${label} | ${ms(cell.median.ms)}${runs} | ${mb(cell.median.rssBytes)} | ${mb(cell.median.heapBytes)} | ${versusStandard(cell, standard)} |`)
      }
    }
  }
  return lines.join('\n') + '\n'
}

function series (report: BenchReport, pick: (m: NonNullable<CellResult['median']>) => number): ChartSeries[] {
  return report.settings.approaches.map(approach => ({
    name: APPROACH_LABELS[approach],
    color: APPROACH_COLORS[approach],
    points: report.cells.filter(c => c.approach === approach).map(c => c.median === null
      ? { x: c.sizeBytes, y: null, failure: c.failure ?? 'failed' }
      : { x: c.sizeBytes, y: pick(c.median) })
  }))
}

function subtitle (report: BenchReport): string {
  const m = report.machine
  return `median of fresh server processes · ${m.cpu} (${m.cores} cores), Node ${m.node} · ${report.date.slice(0, 10)}`
}

export function timeChart (report: BenchReport): string {
  return lineChart({
    title: 'Time to take a JSON array body (lower is better)',
    subtitle: subtitle(report),
    xLabel: 'Body size',
    yLabel: 'Median time (log scale)',
    series: series(report, m => m.ms),
    formatX: formatSize,
    formatY: y => y >= 1000 ? `${y / 1000} s` : `${y} ms`
  })
}

export function memoryChart (report: BenchReport): string {
  return lineChart({
    title: 'Peak server RSS (lower is better)',
    subtitle: subtitle(report),
    xLabel: 'Body size',
    yLabel: 'Peak RSS (log scale)',
    series: series(report, m => m.rssBytes / 1024 ** 2),
    formatX: formatSize,
    formatY: y => `${y} MB`
  })
}
