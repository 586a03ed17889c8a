import { mkdtemp, rm } from 'node:fs/promises'
import path from 'node:path'
import type { FastifyBaseLogger } from 'fastify'
import type { BufferPool } from '../core/buffer-pool.js'
import { FST_NEXURE_ABORTED, FST_NEXURE_UPLOAD_WRITE_FAILED } from '../errors.js'
import { PooledFileWriter } from './spill.js'

/**
 * The one directory a request's files live in, and the guarantee that it goes away.
 *
 * Invariants:
 * - the directory is created on the first file (`mkdtemp`, mode 0700), never before;
 * - every open writer is tracked; `dispose()` destroys them and waits for their descriptors to
 *   close before removing anything, so no descriptor outlives the request;
 * - after `dispose()` starts, no directory and no file can be created for this request (a
 *   `mkdtemp` already in flight is awaited and its directory removed);
 * - `dispose()` is idempotent and may race with a failing write: every removal uses `force`.
 * With `keepFiles`, files already handed to the handler survive; partial files never do.
 */
export class RequestUploadDir {
  readonly #tempDir: string
  readonly #keepFiles: boolean
  readonly #pool: BufferPool | null
  readonly #log: FastifyBaseLogger
  readonly #writers = new Set<PooledFileWriter>()
  #directory: Promise<string> | null = null
  #handedOver = 0
  #disposal: Promise<void> | null = null
  #disposeReason = ''

  constructor (tempDir: string, keepFiles: boolean, pool: BufferPool | null, log: FastifyBaseLogger) {
    this.#tempDir = tempDir
    this.#keepFiles = keepFiles
    this.#pool = pool
    this.#log = log
  }

  get disposed (): boolean {
    return this.#disposal !== null
  }

  /** Opens a writer for a new file of this request; its path is under the request's directory. */
  async open (name: string): Promise<PooledFileWriter> {
    const directory = await this.#ensureDirectory()
    this.#assertOpen()
    const writer = new PooledFileWriter(path.join(directory, name), this.#pool)
    this.#writers.add(writer)
    return writer
  }

  /** The writer is done (finished or failed and closed); it is no longer dispose()'s business. */
  settle (writer: PooledFileWriter): void {
    this.#writers.delete(writer)
  }

  /** A file reached the handler; with keepFiles it is the application's from now on. */
  handOver (): void {
    this.#handedOver++
  }

  /** Closes every open writer, then removes the directory (or, with keepFiles, the partial files). */
  dispose (reason: string): Promise<void> {
    if (this.#disposal === null) {
      this.#disposeReason = reason
      this.#disposal = this.#removeAll().catch((err: unknown) => {
        this.#log.error({ err }, 'nexure: could not remove upload files')
      })
    }
    return this.#disposal
  }

  async #removeAll (): Promise<void> {
    const writers = [...this.#writers]
    this.#writers.clear()
    await Promise.all(writers.map(writer => {
      writer.destroy()
      return writer.fileClosed
    }))
    const directory = this.#directory === null ? null : await this.#directory.catch(() => null)
    if (directory === null) return
    if (this.#keepFiles && this.#handedOver > 0) {
      await Promise.all(writers.map(writer => rm(writer.path, { force: true })))
    } else {
      await rm(directory, { recursive: true, force: true })
    }
  }

  #ensureDirectory (): Promise<string> {
    this.#assertOpen()
    this.#directory ??= mkdtemp(path.join(this.#tempDir, 'nexure-')).catch((err: NodeJS.ErrnoException) => {
      throw new FST_NEXURE_UPLOAD_WRITE_FAILED(`cannot create the request's upload directory (${err.code ?? err.message})`)
    })
    return this.#directory
  }

  #assertOpen (): void {
    if (this.#disposal !== null) throw new FST_NEXURE_ABORTED(`the request ended (${this.#disposeReason}) before its upload was stored`)
  }
}
