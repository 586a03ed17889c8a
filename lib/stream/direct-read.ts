import type { Readable } from 'node:stream'
import { FST_NEXURE_ABORTED, FST_NEXURE_BODY_TOO_LARGE } from '../errors.js'

export interface DirectReadEvents {
  /** Why reading stopped, for BodySource to classify: the limit or a timeout, or the payload itself. */
  failed: (error: Error, stage: 'limit' | 'payload') => void
  /** Every byte of the body went to the consumer (called once, as `next()` reports done). */
  ended: () => void
}

/**
 * Reads a body that needs no decoding, no user transform and no throttling straight off the
 * payload (the socket's IncomingMessage), with no Transform between them.
 *
 * A ByteLimit Transform costs, per chunk, a write request, a callback, a push into its readable
 * buffer, and the stream async iterator's `read()`, which concatenates whatever is buffered into
 * a fresh Buffer. Here each chunk the HTTP parser emits is handed out as it is (one slice of the
 * socket's read, no copy), counted against `bodyLimit` as it arrives: the chunk that crosses the
 * limit fails the read and is never handed out, as ByteLimit does, with the same error.
 *
 * Backpressure: chunks wait here while the consumer is busy, and the payload is paused once
 * `highWaterMark` bytes wait (the socket then stops being read, as with `pipe()`); it resumes
 * when the consumer has taken them. Stopping early (`destroy()`) pauses the payload and lets go
 * of it, never destroys it: the socket still has a response to carry, and what is left of the
 * body is the unread-body policy's to drain or close.
 */
export class DirectRead implements AsyncIterator<Buffer> {
  bytes = 0
  readonly #payload: Readable
  readonly #limit: number
  readonly #highWaterMark: number
  readonly #events: DirectReadEvents
  #queue: Buffer[] = []
  #queued = 0
  #paused = false
  #payloadEnded = false
  /** Failed or destroyed: nothing more is read, the payload is let go. */
  #stopped = false
  #error: Error | null = null
  #waiting: { resolve: (result: IteratorResult<Buffer>) => void, reject: (error: Error) => void } | null = null

  constructor (payload: Readable, limit: number, highWaterMark: number, events: DirectReadEvents) {
    this.#payload = payload
    this.#limit = limit
    this.#highWaterMark = highWaterMark
    this.#events = events
    if (payload.readableEnded) {
      this.#payloadEnded = true
      return
    }
    payload.on('data', this.#onData)
    payload.on('end', this.#onEnd)
    payload.on('error', this.#onError)
    payload.on('close', this.#onClose)
    // A client gone before the handler asked for the body: 'close' was emitted already.
    if (payload.destroyed) {
      this.#onClose()
      return
    }
    payload.resume()
  }

  /** True while the consumer waits for bytes and nothing holds the client back (for idleTimeout). */
  get waitingForClient (): boolean {
    return !this.#stopped && !this.#payloadEnded && !this.#paused && this.#queue.length === 0
  }

  get stopped (): boolean { return this.#stopped }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#stopped) return
    this.bytes += chunk.length
    if (this.bytes > this.#limit) {
      this.fail(new FST_NEXURE_BODY_TOO_LARGE(`the body (${this.bytes} bytes so far)`, this.#limit), 'limit')
      return
    }
    const waiting = this.#waiting
    if (waiting !== null) {
      this.#waiting = null
      waiting.resolve({ value: chunk, done: false })
      return
    }
    this.#queue.push(chunk)
    this.#queued += chunk.length
    if (this.#queued >= this.#highWaterMark && !this.#paused) {
      this.#paused = true
      this.#payload.pause()
    }
  }

  readonly #onEnd = (): void => {
    this.#payloadEnded = true
    this.#detach()
    const waiting = this.#waiting
    if (waiting !== null && this.#queue.length === 0) {
      this.#waiting = null
      this.#events.ended()
      waiting.resolve({ value: undefined, done: true })
    }
  }

  readonly #onError = (error: Error): void => { this.fail(error, 'payload') }

  readonly #onClose = (): void => {
    if (!this.#payload.readableEnded) this.fail(new FST_NEXURE_ABORTED('the connection closed before the body ended'), 'payload')
  }

  next (): Promise<IteratorResult<Buffer>> {
    if (this.#error !== null) return Promise.reject(this.#error)
    const chunk = this.#queue.shift()
    if (chunk !== undefined) {
      this.#queued -= chunk.length
      if (this.#paused && this.#queued < this.#highWaterMark && !this.#stopped) {
        this.#paused = false
        this.#payload.resume()
      }
      return Promise.resolve({ value: chunk, done: false })
    }
    if (this.#payloadEnded) {
      this.#events.ended()
      return Promise.resolve({ value: undefined, done: true })
    }
    if (this.#stopped) return Promise.reject(new FST_NEXURE_ABORTED('reading stopped before the body ended'))
    return new Promise((resolve, reject) => { this.#waiting = { resolve, reject } })
  }

  /** Stops reading with `error` (the limit, a timeout, the client gone); the first failure wins. */
  fail (error: Error, stage: 'limit' | 'payload'): void {
    if (this.#stopped) return
    this.#error = error
    this.#events.failed(error, stage)
    this.#stop()
    const waiting = this.#waiting
    if (waiting !== null) {
      this.#waiting = null
      waiting.reject(error)
    }
  }

  /** Stops reading and lets the payload go, paused, for the unread-body policy. Idempotent. */
  destroy (): void {
    if (this.#stopped) return
    this.#stop()
    const waiting = this.#waiting
    if (waiting !== null) {
      this.#waiting = null
      waiting.reject(new FST_NEXURE_ABORTED('reading stopped before the body ended'))
    }
  }

  #stop (): void {
    this.#stopped = true
    this.#queue = []
    this.#queued = 0
    this.#detach()
    if (!this.#payloadEnded && !this.#payload.destroyed) this.#payload.pause()
  }

  #detach (): void {
    const payload = this.#payload
    payload.removeListener('data', this.#onData)
    payload.removeListener('end', this.#onEnd)
    payload.removeListener('error', this.#onError)
    // 'close' stays until the body ended or reading stopped: it is how an abort is seen.
    if (this.#stopped || this.#payloadEnded) payload.removeListener('close', this.#onClose)
  }
}
