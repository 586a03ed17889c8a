import { pipeline, type Readable, type Transform } from 'node:stream'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { ByteLimit } from './byte-limit.js'
import { DirectRead } from './direct-read.js'
import { createDecoder, type ContentCoding } from './decode.js'
import { Throttle, type PressureMonitor } from './pressure.js'
import {
  FST_NEXURE_ABORTED,
  FST_NEXURE_BODY_TIMEOUT,
  FST_NEXURE_INVALID_ENCODING,
  FST_NEXURE_TRANSFORM_FAILED
} from '../errors.js'

export interface BodySourceOptions {
  /** Decoders to apply, in decoding order. */
  codings: readonly ContentCoding[]
  bodyLimit: number
  /** Made lazily, when the body is first read: user transforms run per request. */
  makeTransforms: () => Transform[]
  highWaterMark: number
  /** Longest the whole body may take, in ms, from the first read; 0 for no limit. */
  bodyTimeout: number
  /** Longest the client may stay silent while the body is being read, in ms; 0 for no limit. */
  idleTimeout: number
  /** Pauses intake under event-loop or heap pressure; null when off. */
  monitor: PressureMonitor | null
}

type Stage = 'limit' | 'decoder' | 'transform'

/**
 * Bytes handed out by `chunks()` between two turns of the event loop. Buffered chunks resolve
 * `next()` from the microtask queue, so a consumer that never waits on anything else would run
 * through a whole socket buffer, and a fast client keeps that full, without ever letting a
 * timer or another request's I/O run. Measured with `npm run bench:fairness -- --size 200MB`
 * (GET /health every 10 ms): a turn every 256 KiB gave p99 89-132 ms and blocks of 80-122 ms;
 * every 32 KiB, p99 17-33 ms and blocks of 28-42 ms, at the same body time (16 KiB: no better).
 */
const YIELD_EVERY = 32 * 1024

/** What the timeouts watch: the bytes that arrived, and whether nexure is waiting for more. */
interface Intake {
  readonly bytes: number
  /** Reading stopped already (failed, destroyed). */
  readonly stopped: boolean
  /** The consumer waits for bytes and nothing holds the client back. */
  readonly waitingForClient: boolean
  fail: (error: Error) => void
}

/**
 * One request body as a pull-based sequence of decoded, limited, transformed chunks.
 *
 * payload ─pipe─▶ limit(received) ─▶ [decoder ─▶ limit(decoded)]* ─▶ transforms* ─▶ consumer
 *
 * A body with nothing to decode, transform or throttle (the usual case) skips all of that: a
 * DirectRead takes the payload's chunks as they are and counts them against the same limit.
 *
 * The payload (the socket's IncomingMessage) is piped in rather than put inside `pipeline()`:
 * a consumer that stops early destroys the pipeline, and that must not destroy the socket, which
 * still has a response to carry. What is left of the payload is the plugin's to drain or close.
 *
 * Chunks are pulled with an async iterator, so nothing is read from the socket faster than the
 * consumer asks: the handler's `for await` pace is the socket's read pace. Errors are classified
 * by the stage that raised them, so each becomes the right coded HTTP error.
 */
export class BodySource {
  readonly #payload: Readable
  readonly #options: BodySourceOptions
  #head: ByteLimit | null = null
  #direct: DirectRead | null = null
  #stages: Transform[] = []
  #iterator: AsyncIterator<Buffer> | null = null
  #prefix: Buffer[] = []
  #failure: { error: Error, stage: Stage | 'payload' } | null = null
  #decoded: ByteLimit | null = null
  #throttle: Throttle | null = null
  #timers: NodeJS.Timeout[] = []
  #ended = false
  #startedAt = 0
  #endedAt = 0

  constructor (payload: Readable, options: BodySourceOptions) {
    this.#payload = payload
    this.#options = options
  }

  get started (): boolean { return this.#iterator !== null }
  /** True once every byte of the body went through to the consumer. */
  get ended (): boolean { return this.#ended }
  get bytesReceived (): number { return (this.#direct ?? this.#head)?.bytes ?? 0 }
  get bytesDecoded (): number { return (this.#decoded ?? this.#direct ?? this.#head)?.bytes ?? 0 }
  get throttledMs (): number { return this.#throttle?.throttledMs ?? 0 }
  get durationMs (): number {
    if (this.#startedAt === 0) return 0
    return (this.#endedAt === 0 ? performance.now() : this.#endedAt) - this.#startedAt
  }

  #open (): AsyncIterator<Buffer> {
    if (this.#iterator !== null) return this.#iterator
    const { codings, bodyLimit, highWaterMark } = this.#options
    this.#startedAt = performance.now()
    const transforms = this.#options.makeTransforms()
    if (codings.length === 0 && transforms.length === 0 && this.#options.monitor === null) {
      this.#iterator = this.#openDirect()
      return this.#iterator
    }
    const head = new ByteLimit(bodyLimit, 'the body', highWaterMark)
    this.#head = head
    const stages: Transform[] = [head]
    const watch = (stream: Transform, stage: Stage): void => {
      stream.once('error', error => { this.#failure ??= { error, stage } })
    }
    watch(head, 'limit')
    if (this.#options.monitor !== null) {
      this.#throttle = new Throttle(this.#options.monitor, highWaterMark)
      stages.push(this.#throttle)
    }
    for (const coding of codings) {
      const decoder = createDecoder(coding, highWaterMark)
      watch(decoder, 'decoder')
      decoder.once('error', error => { (error as Error & { coding?: string }).coding = coding })
      const limit = new ByteLimit(bodyLimit, `the decoded body (${coding})`, highWaterMark)
      watch(limit, 'limit')
      stages.push(decoder, limit)
      this.#decoded = limit
    }
    for (const transform of transforms) {
      watch(transform, 'transform')
      stages.push(transform)
    }
    this.#stages = stages
    const last = stages[stages.length - 1]!
    if (stages.length > 1) {
      // The callback only keeps pipeline() from throwing; errors reach the consumer through
      // the last stage, which pipeline() destroys with the first error.
      pipeline(stages as unknown as [Transform, Transform], () => {})
    }

    const payload = this.#payload
    const onPayloadError = (error: Error): void => {
      this.#failure ??= { error, stage: 'payload' }
      head.destroy(error)
    }
    const onPayloadClose = (): void => {
      if (!payload.readableEnded) onPayloadError(new FST_NEXURE_ABORTED('the connection closed before the body ended'))
    }
    payload.on('error', onPayloadError)
    payload.on('close', onPayloadClose)
    last.once('close', () => {
      payload.removeListener('error', onPayloadError)
      payload.removeListener('close', onPayloadClose)
    })
    payload.pipe(head)
    this.#armTimeouts(payload, {
      get bytes () { return head.bytes },
      get stopped () { return head.destroyed },
      get waitingForClient () { return payload.readableFlowing !== false && head.writableLength === 0 },
      fail: error => head.destroy(error)
    })
    last.once('end', () => { this.#ended = true; this.#endedAt = performance.now() })
    last.once('close', () => this.#clearTimers())
    this.#iterator = last[Symbol.asyncIterator]()
    return this.#iterator
  }

  #openDirect (): AsyncIterator<Buffer> {
    const { bodyLimit, highWaterMark } = this.#options
    const direct = new DirectRead(this.#payload, bodyLimit, highWaterMark, {
      failed: (error, stage) => {
        this.#failure ??= { error, stage }
        this.#clearTimers()
      },
      ended: () => {
        if (this.#ended) return
        this.#ended = true
        this.#endedAt = performance.now()
        this.#clearTimers()
      }
    })
    this.#direct = direct
    if (!direct.stopped) this.#armTimeouts(this.#payload, {
      get bytes () { return direct.bytes },
      get stopped () { return direct.stopped },
      get waitingForClient () { return direct.waitingForClient },
      fail: error => direct.fail(error, 'limit')
    })
    return direct
  }

  /**
   * Slow clients hold a socket, a parser and pooled buffers for as long as they like unless
   * something ends them: `bodyTimeout` bounds the whole body, `idleTimeout` the silence while
   * nexure is waiting for bytes. Silence while nexure itself is not reading (the handler is
   * busy, or intake is throttled) is backpressure, not idleness, and does not count.
   */
  #armTimeouts (payload: Readable, intake: Intake): void {
    const { bodyTimeout, idleTimeout } = this.#options
    const fail = (why: string): void => {
      // Once the last byte arrived the client is done; a slow handler is not the client's fault.
      if (payload.readableEnded || intake.stopped) return
      const error = new FST_NEXURE_BODY_TIMEOUT(why)
      this.#failure ??= { error, stage: 'limit' }
      intake.fail(error)
    }
    if (bodyTimeout > 0) {
      this.#timers.push(setTimeout(() => fail(`the body took longer than ${bodyTimeout} ms (bodyTimeout); ${intake.bytes} bytes arrived`), bodyTimeout))
    }
    if (idleTimeout > 0) {
      let lastBytes = -1
      let silentSince = performance.now()
      const check = (): void => {
        const waiting = intake.waitingForClient && !payload.readableEnded
        if (intake.bytes !== lastBytes || !waiting) {
          lastBytes = intake.bytes
          silentSince = performance.now()
        } else if (performance.now() - silentSince >= idleTimeout) {
          fail(`no data for ${idleTimeout} ms (idleTimeout) after ${intake.bytes} bytes`)
        }
      }
      this.#timers.push(setInterval(check, Math.max(10, Math.min(1000, idleTimeout / 4))))
    }
    for (const timer of this.#timers) timer.unref()
  }

  #clearTimers (): void {
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers = []
  }

  /**
   * Reads the whole body if its decoded size is at most `max` bytes and returns it; returns
   * null as soon as it is larger, keeping what was read so that `chunks()` replays it.
   */
  async readUpTo (max: number): Promise<Buffer | null> {
    const iterator = this.#open()
    let total = 0
    try {
      for (;;) {
        const next = await iterator.next()
        if (next.done === true) return this.#prefix.length === 1 ? this.#prefix[0]! : Buffer.concat(this.#prefix, total)
        this.#prefix.push(next.value)
        total += next.value.length
        if (total > max) return null
      }
    } catch (error) {
      throw this.classify(error)
    } finally {
      if (this.#ended) this.#prefix = []
    }
  }

  /** The body's chunks, from the first byte (or the first byte not yet handed out). */
  async * chunks (): AsyncGenerator<Buffer, void, undefined> {
    const iterator = this.#open()
    try {
      let sinceTurn = 0
      for (;;) {
        let chunk = this.#prefix.shift()
        if (chunk === undefined) {
          const next = await iterator.next()
          if (next.done === true) return
          chunk = next.value
        }
        yield chunk
        sinceTurn += chunk.length
        if (sinceTurn >= YIELD_EVERY) {
          sinceTurn = 0
          await nextTurn()
        }
      }
    } catch (error) {
      throw this.classify(error)
    }
  }

  /**
   * Maps an error raised while reading to the error the client should see: nexure's own coded
   * errors as they are; a decoder failure as a 400; a client that went away as ABORTED; a user
   * transform's error as it is when it carries an HTTP status, as TRANSFORM_FAILED otherwise.
   */
  classify (error: unknown): Error {
    const failure = this.#failure
    const err = (failure?.error ?? error) as Error & { code?: string, statusCode?: number, coding?: string }
    if (typeof err.code === 'string' && err.code.startsWith('FST_NEXURE_')) return err
    if (failure?.stage === 'decoder') return new FST_NEXURE_INVALID_ENCODING(err.coding ?? 'compressed', err.message)
    if (failure?.stage === 'transform') {
      if (typeof err.statusCode === 'number' && err.statusCode >= 400) return err
      const wrapped = new FST_NEXURE_TRANSFORM_FAILED(err.message)
      wrapped.cause = err
      return wrapped
    }
    if (failure?.stage === 'payload' || err.code === 'ERR_STREAM_PREMATURE_CLOSE' || err.code === 'ECONNRESET') {
      return new FST_NEXURE_ABORTED(err.message)
    }
    return err
  }

  /** Stops reading and frees every stage (zlib handles hold native memory). Idempotent. */
  destroy (): void {
    this.#clearTimers()
    this.#prefix = []
    this.#direct?.destroy()
    if (this.#head !== null) this.#payload.unpipe(this.#head)
    for (const stage of this.#stages) stage.destroy()
  }
}
