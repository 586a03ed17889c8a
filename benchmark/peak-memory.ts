import { readFileSync, writeFileSync } from 'node:fs'

// Peak memory of this process since the last reset.
//
// A timer alone misses the peak: Fastify's buffering parser holds the event loop for seconds
// inside one JSON.parse, exactly when memory is highest. So:
// - RSS: on Linux the kernel's high-water mark (VmHWM in /proc/self/status), reset by writing
//   5 to /proc/self/clear_refs; elsewhere the sampled maximum, or ru_maxrss when that is higher
//   (ru_maxrss cannot be reset, which is one reason every run gets a fresh server process).
// - Heap: the largest used heap sampled every 10 ms (and at the reset and the report). A
//   buffered body and its parsed value stay referenced until the handler returns, so the
//   sampler sees them. (v8.GCProfiler would give the size before every GC, but on Node 20 a
//   restarted GCProfiler keeps native memory: it made the measured server's RSS grow by 200 MB
//   over a 2 GB body, which is the very figure this module exists to measure.)

const SAMPLE_MS = 10

export interface PeakMemoryReport {
  rssBytes: number
  heapBytes: number
  /** RSS and used heap at the reset, for reference: the peak includes them. */
  baselineRssBytes: number
  baselineHeapBytes: number
  /** Where the RSS peak comes from: `VmHWM` (exact) or `sampled`. */
  rssSource: 'VmHWM' | 'sampled'
}

function readHighWaterMark (): number | null {
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))
    return match === null ? null : Number(match[1]) * 1024
  } catch {
    return null
  }
}

function resetHighWaterMark (): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5')
    return true
  } catch {
    return false
  }
}

export class PeakMemory {
  #sampledRss = 0
  #sampledHeap = 0
  #hwm = false
  #baseline = { rss: 0, heap: 0 }
  #sampler: NodeJS.Timeout | null = null

  start (): void {
    this.reset()
    this.#sampler = setInterval(() => this.#sample(), SAMPLE_MS)
    this.#sampler.unref()
  }

  /** Starts a new measurement; collects garbage first when the process runs with --expose-gc. */
  reset (): void {
    globalThis.gc?.()
    const usage = process.memoryUsage()
    this.#baseline = { rss: usage.rss, heap: usage.heapUsed }
    this.#sampledRss = 0
    this.#sampledHeap = 0
    this.#hwm = resetHighWaterMark() && readHighWaterMark() !== null
    this.#sample()
  }

  report (): PeakMemoryReport {
    this.#sample()
    const heapBytes = this.#sampledHeap
    const hwm = this.#hwm ? readHighWaterMark() : null
    const baseline = { baselineRssBytes: this.#baseline.rss, baselineHeapBytes: this.#baseline.heap }
    if (hwm !== null) return { rssBytes: Math.max(hwm, this.#sampledRss), heapBytes, rssSource: 'VmHWM', ...baseline }
    return { rssBytes: this.#sampledRss, heapBytes, rssSource: 'sampled', ...baseline }
  }

  stop (): void {
    if (this.#sampler !== null) clearInterval(this.#sampler)
  }

  #sample (): void {
    const usage = process.memoryUsage()
    if (usage.rss > this.#sampledRss) this.#sampledRss = usage.rss
    if (usage.heapUsed > this.#sampledHeap) this.#sampledHeap = usage.heapUsed
  }
}
