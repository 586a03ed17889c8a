import { readFileSync, writeFileSync } from 'node:fs'
import v8 from 'node:v8'

// Peak memory of this process since the last reset.
//
// A timer alone misses the peak: Fastify's buffering parser holds the event loop for seconds
// inside one JSON.parse, exactly when memory is highest. So:
// - RSS: on Linux the kernel's high-water mark (VmHWM in /proc/self/status), reset by writing
//   5 to /proc/self/clear_refs; elsewhere the sampled maximum, or ru_maxrss when that is higher
//   (ru_maxrss cannot be reset, which is one reason every run gets a fresh server process).
// - Heap: the used heap only grows between collections, so its peak is the largest of the
//   sizes V8 reports just before each GC (v8.GCProfiler) and of the sampled sizes.

const SAMPLE_MS = 10
// The profiler keeps every GC event until stop(); flushing bounds what it holds.
const FLUSH_MS = 250

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
  #gcHeap = 0
  #hwm = false
  #baseline = { rss: 0, heap: 0 }
  #profiler: v8.GCProfiler | null = null
  #sampler: NodeJS.Timeout | null = null
  #flusher: NodeJS.Timeout | null = null

  start (): void {
    this.reset()
    this.#sampler = setInterval(() => this.#sample(), SAMPLE_MS)
    this.#flusher = setInterval(() => this.#flush(true), FLUSH_MS)
    this.#sampler.unref()
    this.#flusher.unref()
  }

  /** Starts a new measurement; collects garbage first when the process runs with --expose-gc. */
  reset (): void {
    this.#flush(false)
    globalThis.gc?.()
    const usage = process.memoryUsage()
    this.#baseline = { rss: usage.rss, heap: usage.heapUsed }
    this.#sampledRss = 0
    this.#sampledHeap = 0
    this.#gcHeap = 0
    this.#hwm = resetHighWaterMark() && readHighWaterMark() !== null
    this.#profiler = new v8.GCProfiler()
    this.#profiler.start()
    this.#sample()
  }

  report (): PeakMemoryReport {
    this.#sample()
    this.#flush(true)
    const heapBytes = Math.max(this.#sampledHeap, this.#gcHeap)
    const hwm = this.#hwm ? readHighWaterMark() : null
    const baseline = { baselineRssBytes: this.#baseline.rss, baselineHeapBytes: this.#baseline.heap }
    if (hwm !== null) return { rssBytes: Math.max(hwm, this.#sampledRss), heapBytes, rssSource: 'VmHWM', ...baseline }
    return { rssBytes: this.#sampledRss, heapBytes, rssSource: 'sampled', ...baseline }
  }

  stop (): void {
    if (this.#sampler !== null) clearInterval(this.#sampler)
    if (this.#flusher !== null) clearInterval(this.#flusher)
    this.#flush(false)
  }

  #sample (): void {
    const usage = process.memoryUsage()
    if (usage.rss > this.#sampledRss) this.#sampledRss = usage.rss
    if (usage.heapUsed > this.#sampledHeap) this.#sampledHeap = usage.heapUsed
  }

  #flush (restart: boolean): void {
    const profiler = this.#profiler
    if (profiler === null) return
    this.#profiler = null
    const result = profiler.stop()
    for (const event of result?.statistics ?? []) {
      const used = event.beforeGC.heapStatistics.usedHeapSize
      if (used > this.#gcHeap) this.#gcHeap = used
    }
    if (restart) {
      this.#profiler = new v8.GCProfiler()
      this.#profiler.start()
    }
  }
}
