import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import v8 from 'node:v8'
import { Worker } from 'node:worker_threads'
import { APPROACH_LABELS, APPROACHES, buildApp, isApproach, ROUTE } from './approaches.js'
import { runClient } from './processes.js'
import { describeMachine, machine } from './results.js'
import { sendJsonArray } from './send-json.js'
import { lineChart, niceLinearTicks } from './svg-chart.js'
import { formatSize, mb, parseSize } from './units.js'

// `npm run profile:memory -- --approach nexure --size 500MB`: the server runs in this process;
// while a client process sends one large body, process.memoryUsage() and
// v8.getHeapStatistics() are sampled every 20 ms. The timeline is written as JSON and drawn as
// an SVG line chart.
//
// A timer on the main thread stops firing while the server is busy in one long synchronous
// call (the buffering approach's JSON.parse of the whole body), which is exactly when memory
// peaks. So RSS, which is per process, is also sampled from a worker thread that keeps
// running; the heap figures are per isolate and come from the main thread only.

const HELP = `Usage: npm run profile:memory -- [options]

  --approach NAME   standard, naive or nexure (default: nexure)
  --size SIZE       body size, e.g. 500MB (default), 50MB, 2GB
  --interval MS     sampling interval (default: 20)
  --out DIR         where to write memory-<approach>-<size>.json/.svg (default: benchmark/results)
  -h, --help        this text
`

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const WARMUP_BYTES = 2 * 1024 * 1024

export interface MemorySample {
  /** Milliseconds since the measured request started. */
  ms: number
  rss: number
  heapTotal: number
  heapUsed: number
  external: number
  arrayBuffers: number
  /** v8.getHeapStatistics(): committed physical heap memory. */
  totalPhysicalSize: number
  /** v8.getHeapStatistics(): memory V8 allocated with malloc. */
  mallocedMemory: number
}

const RSS_WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
setInterval(() => {
  parentPort.postMessage({ at: performance.timeOrigin + performance.now(), rss: process.memoryUsage.rss() })
}, workerData.interval)
`

const { values } = parseArgs({
  options: {
    approach: { type: 'string', default: 'nexure' },
    size: { type: 'string', default: '500MB' },
    interval: { type: 'string', default: '20' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false }
  }
})

async function main (): Promise<number> {
  if (values.help === true) {
    process.stdout.write(HELP)
    return 0
  }
  const approach = values.approach ?? 'nexure'
  if (!isApproach(approach)) throw new Error(`unknown approach ${JSON.stringify(approach)} (known: ${APPROACHES.join(', ')})`)
  const size = parseSize(values.size ?? '500MB')
  const interval = Number(values.interval)
  if (!Number.isInteger(interval) || interval < 1) throw new Error('--interval must be a positive integer (milliseconds)')
  const outDir = path.resolve(values.out ?? path.join(PACKAGE_ROOT, 'benchmark', 'results'))

  const app = await buildApp(approach, Math.max(size, WARMUP_BYTES) + 1024)
  const url = `${await app.listen({ port: 0, host: '127.0.0.1' })}${ROUTE}`
  const timeoutMs = 60_000 + Math.ceil(size / (1024 ** 2)) * 1000
  const samples: MemorySample[] = []
  const rssTrack: Array<{ ms: number, rss: number }> = []
  let origin = 0
  const now = (): number => performance.timeOrigin + performance.now()
  const sample = (): void => {
    const usage = process.memoryUsage()
    const heap = v8.getHeapStatistics()
    samples.push({
      ms: now() - origin,
      rss: usage.rss,
      heapTotal: usage.heapTotal,
      heapUsed: usage.heapUsed,
      external: usage.external,
      arrayBuffers: usage.arrayBuffers,
      totalPhysicalSize: heap.total_physical_size,
      mallocedMemory: heap.malloced_memory
    })
  }
  const worker = new Worker(RSS_WORKER, { eval: true, workerData: { interval } })
  worker.on('message', (message: { at: number, rss: number }) => {
    if (origin > 0) rssTrack.push({ ms: message.at - origin, rss: message.rss })
  })
  let timer: NodeJS.Timeout | undefined
  try {
    const warmup = await sendJsonArray({ kind: 'json', url, size: WARMUP_BYTES, timeoutMs })
    if (!warmup.ok) throw new Error(`warm-up request failed: ${warmup.error}`)
    globalThis.gc?.()
    process.stderr.write(`sampling memory every ${interval} ms while ${approach} takes a ${formatSize(size)} JSON array...\n`)
    origin = now()
    sample()
    timer = setInterval(sample, interval)
    const result = await runClient({ kind: 'json', url, size, timeoutMs })
    sample()
    clearInterval(timer)
    // Let the worker's queued messages (sent while the main thread was busy) arrive.
    await new Promise(resolve => setTimeout(resolve, interval * 3))
    if (!result.ok) throw new Error(`the request failed: ${result.error} ${result.body ?? ''}`)

    const peak = (pick: (s: MemorySample) => number): number => Math.max(...samples.map(pick))
    const peakRss = Math.max(peak(s => s.rss), ...rssTrack.map(s => s.rss))
    const report = {
      tool: 'nexure-profile-memory',
      date: new Date().toISOString(),
      machine: machine(),
      approach,
      sizeBytes: size,
      items: result.items,
      requestMs: result.ms,
      intervalMs: interval,
      peaks: { rss: peakRss, heapUsed: peak(s => s.heapUsed), heapTotal: peak(s => s.heapTotal), external: peak(s => s.external) },
      samples,
      rssFromWorker: rssTrack
    }
    mkdirSync(outDir, { recursive: true })
    const base = path.join(outDir, `memory-${approach}-${formatSize(size)}`)
    writeFileSync(`${base}.json`, JSON.stringify(report, null, 2) + '\n')
    const toMb = (bytes: number): number => bytes / 1024 ** 2
    // Main-thread samples stop while the server is busy in one synchronous call: leave a gap
    // rather than draw a straight line across what was not seen.
    const gap = (interval * 5) / 1000
    const endMs = Math.max(...samples.map(s => s.ms), ...rssTrack.map(s => s.ms))
    writeFileSync(`${base}.svg`, lineChart({
      title: `${APPROACH_LABELS[approach]} taking a ${formatSize(size)} JSON array: server memory over time`,
      subtitle: `every ${interval} ms (gaps: main thread busy) · ${report.machine.cores} cores, Node ${report.machine.node} · ${report.date.slice(0, 10)}`,
      xLabel: 'Time since the request started (s)',
      yLabel: 'MB',
      xScale: 'linear',
      yScale: 'linear',
      xTicks: niceLinearTicks(endMs / 1000),
      formatX: x => `${Number(x.toFixed(2))}`,
      formatY: y => `${y}`,
      series: [
        { name: 'RSS', color: '#1f77b4', breakOver: gap, points: rssTrack.map(s => ({ x: s.ms / 1000, y: toMb(s.rss) })) },
        { name: 'heap total', color: '#9467bd', dashed: true, breakOver: gap, points: samples.map(s => ({ x: s.ms / 1000, y: toMb(s.heapTotal) })) },
        { name: 'heap used', color: '#2ca02c', breakOver: gap, points: samples.map(s => ({ x: s.ms / 1000, y: toMb(s.heapUsed) })) },
        { name: 'external', color: '#ff7f0e', breakOver: gap, points: samples.map(s => ({ x: s.ms / 1000, y: toMb(s.external) })) }
      ],
      showMarkers: false
    }))
    process.stdout.write(`${describeMachine(report.machine)}\n`)
    process.stdout.write(`${APPROACH_LABELS[approach]}, ${formatSize(size)}: ${result.items} items in ${result.ms.toFixed(0)} ms; ` +
      `peak RSS ${mb(peakRss)} MB, peak heap used ${mb(report.peaks.heapUsed)} MB (sampled), ${samples.length} samples\n`)
    process.stdout.write(`timeline: ${base}.json\nchart: ${base}.svg\n`)
    return 0
  } finally {
    if (timer !== undefined) clearInterval(timer)
    await worker.terminate()
    await app.close()
  }
}

try {
  process.exitCode = await main()
} catch (error) {
  process.stderr.write(`nexure profile:memory: ${(error as Error).message}\n`)
  process.exitCode = 1
}
