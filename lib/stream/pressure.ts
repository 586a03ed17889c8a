import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import { Transform, type TransformCallback } from 'node:stream'

export interface PressureBounds {
  /** Event-loop delay (ms, the worst seen in one sample interval) above which intake pauses. */
  maxEventLoopDelay?: number
  /** `process.memoryUsage().heapUsed` above which intake pauses. */
  maxHeapUsedBytes?: number
  /** How often pressure is sampled, in ms. @default 50 */
  sampleInterval?: number
}

/**
 * Samples event-loop delay and heap use, and tells the body streams when to stop reading.
 *
 * One monitor serves every request of a registration. While it reports pressure, each body's
 * Throttle stage holds its chunk: the stages before it fill up, the socket is no longer read,
 * and TCP flow control slows the client. Nothing is dropped; intake resumes at the first sample
 * under the bounds.
 */
export class PressureMonitor {
  readonly #bounds: Required<PressureBounds>
  readonly #histogram: IntervalHistogram
  readonly #timer: NodeJS.Timeout
  #pressured = false
  #waiters: Array<() => void> = []

  constructor (bounds: PressureBounds) {
    this.#bounds = {
      maxEventLoopDelay: bounds.maxEventLoopDelay ?? Infinity,
      maxHeapUsedBytes: bounds.maxHeapUsedBytes ?? Infinity,
      sampleInterval: bounds.sampleInterval ?? 50
    }
    this.#histogram = monitorEventLoopDelay({ resolution: 10 })
    this.#histogram.enable()
    this.#timer = setInterval(() => this.#sample(), this.#bounds.sampleInterval)
    this.#timer.unref()
  }

  get pressured (): boolean { return this.#pressured }

  #sample (): void {
    const delayMs = this.#histogram.max / 1e6
    this.#histogram.reset()
    const heapUsed = this.#bounds.maxHeapUsedBytes === Infinity ? 0 : process.memoryUsage().heapUsed
    this.#pressured = delayMs > this.#bounds.maxEventLoopDelay || heapUsed > this.#bounds.maxHeapUsedBytes
    if (!this.#pressured && this.#waiters.length > 0) {
      const waiters = this.#waiters
      this.#waiters = []
      for (const resume of waiters) resume()
    }
  }

  /** Calls `resume` at once when there is no pressure, else at the first sample without it. */
  whenRelieved (resume: () => void): void {
    if (this.#pressured) this.#waiters.push(resume)
    else resume()
  }

  close (): void {
    clearInterval(this.#timer)
    this.#histogram.disable()
    const waiters = this.#waiters
    this.#waiters = []
    for (const resume of waiters) resume()
  }
}

/** Holds each chunk while the monitor reports pressure; counts the time held. */
export class Throttle extends Transform {
  throttledMs = 0
  readonly #monitor: PressureMonitor

  constructor (monitor: PressureMonitor, highWaterMark: number) {
    super({ highWaterMark })
    this.#monitor = monitor
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.#monitor.pressured) {
      callback(null, chunk)
      return
    }
    const since = performance.now()
    this.#monitor.whenRelieved(() => {
      this.throttledMs += performance.now() - since
      if (!this.destroyed) callback(null, chunk)
    })
  }
}
