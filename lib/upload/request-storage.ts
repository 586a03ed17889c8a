import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { FST_NEXURE_ABORTED } from '../errors.js'
import type { StorageEngine, StorageSink, UploadFileInfo } from './storage.js'

interface Committed {
  readonly stored: object
  handedOver: boolean
}

/**
 * One request's files in a storage engine, and the guarantee that nothing outlives the request
 * that should not. Engine-agnostic: disk and S3 get the same rules.
 *
 * Invariants:
 * - every sink is tracked from `open()` until it is committed or aborted; `dispose()` aborts the
 *   open ones (and any `open()` still in flight) and waits for them before removing anything;
 * - after `dispose()` starts, no file can be opened for this request;
 * - committed files are removed when the request failed, and after any request for an engine
 *   that is not durable; with `keepFiles`, files already handed to the handler are never removed;
 * - `engine.remove()` runs once, last, and only if the request opened a file;
 * - `dispose()` is idempotent; the first call decides whether the request failed.
 */
export class RequestStorage {
  readonly #engine: StorageEngine
  readonly #request: FastifyRequest
  readonly #keepFiles: boolean
  readonly #log: FastifyBaseLogger
  readonly #open = new Set<StorageSink>()
  readonly #opening = new Set<Promise<unknown>>()
  readonly #committed: Committed[] = []
  #opened = false
  #disposal: Promise<void> | null = null
  #disposeReason = ''

  constructor (engine: StorageEngine, request: FastifyRequest, keepFiles: boolean) {
    this.#engine = engine
    this.#request = request
    this.#keepFiles = keepFiles
    this.#log = request.log
  }

  get disposed (): boolean {
    return this.#disposal !== null
  }

  /** Opens a sink for a new file; it is tracked until `commit()` or `abort()` here. */
  open (file: UploadFileInfo): Promise<StorageSink> {
    this.#assertOpen()
    this.#opened = true
    // dispose() waits for the whole of it, the abort of a sink that arrives too late included,
    // before engine.remove() runs: nothing may be created while the engine cleans up.
    const task = this.#openSink(file)
    const settled = task.then(() => {}, () => {})
    this.#opening.add(settled)
    void settled.then(() => this.#opening.delete(settled))
    return task
  }

  async #openSink (file: UploadFileInfo): Promise<StorageSink> {
    const sink = await this.#engine.open(file, this.#request)
    if (this.#disposal !== null) {
      // The request ended while the engine was opening: undo at once.
      const reason = new FST_NEXURE_ABORTED(`the request ended (${this.#disposeReason}) before its upload was stored`)
      await this.#abortSink(sink, reason)
      throw reason
    }
    this.#open.add(sink)
    return sink
  }

  /** The sink's writable finished: commits it. On failure the sink is aborted and the error thrown. */
  async commit (sink: StorageSink): Promise<{ stored: object, handOver: () => void }> {
    // dispose() may have aborted it as its last bytes were written: never commit after abort.
    if (!this.#open.has(sink)) throw new FST_NEXURE_ABORTED(`the request ended (${this.#disposeReason}) before its upload was stored`)
    let stored: object
    try {
      stored = await sink.commit()
    } catch (err) {
      await this.abort(sink, err as Error)
      throw err
    }
    if (!this.#open.delete(sink)) {
      // dispose() aborted this sink while commit() ran; its abort() undoes what commit() made.
      throw new FST_NEXURE_ABORTED(`the request ended (${this.#disposeReason}) before its upload was stored`)
    }
    const entry: Committed = { stored, handedOver: false }
    this.#committed.push(entry)
    return { stored, handOver: () => { entry.handedOver = true } }
  }

  /** The file failed: its sink leaves nothing behind. */
  async abort (sink: StorageSink, reason: Error): Promise<void> {
    if (!this.#open.delete(sink)) return
    await this.#abortSink(sink, reason)
  }

  /** Files committed so far. */
  get committedCount (): number {
    return this.#committed.length
  }

  /**
   * Ends the request's storage: aborts what is open, then removes the committed files the
   * request no longer needs. `failed`: the request did not succeed (an upload error, an error
   * status, a connection lost before the response).
   */
  dispose (reason: string, failed: boolean): Promise<void> {
    if (this.#disposal === null) {
      this.#disposeReason = reason
      this.#disposal = this.#removeAll(failed).catch((err: unknown) => {
        this.#log.error({ err }, 'nexure: could not remove upload files')
      })
    }
    return this.#disposal
  }

  async #removeAll (failed: boolean): Promise<void> {
    const reason = new FST_NEXURE_ABORTED(`the request ended (${this.#disposeReason}) before its upload was stored`)
    const open = [...this.#open]
    this.#open.clear()
    await Promise.all([
      ...open.map(sink => this.#abortSink(sink, reason)),
      // An open() in flight sees the disposal when the engine answers and aborts its own sink.
      ...[...this.#opening].map(opening => opening.catch(() => {}))
    ])
    if (!this.#opened) return
    const unwanted = failed || !this.#engine.durable
    const remove = unwanted ? this.#committed.filter(file => !(this.#keepFiles && file.handedOver)) : []
    await this.#engine.remove(remove.map(file => file.stored), this.#request)
  }

  async #abortSink (sink: StorageSink, reason: Error): Promise<void> {
    // Without an error: a writable never piped (a transform factory threw) has no listener for one.
    sink.writable.destroy()
    try {
      await sink.abort(reason)
    } catch (err) {
      this.#log.error({ err }, 'nexure: a storage engine failed to abort a file')
    }
  }

  #assertOpen (): void {
    if (this.#disposal !== null) throw new FST_NEXURE_ABORTED(`the request ended (${this.#disposeReason}) before its upload was stored`)
  }
}
