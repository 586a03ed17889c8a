import { createHash, type Hash } from 'node:crypto'
import { createWriteStream, type WriteStream } from 'node:fs'
import { Transform, Writable, type TransformCallback } from 'node:stream'
import type { BufferPool } from '../core/buffer-pool.js'
import { FST_NEXURE_FILE_TOO_LARGE, FST_NEXURE_TOTAL_TOO_LARGE } from '../errors.js'

/** The bytes of all files of one request, against `maxTotalSize`; shared by their meters. */
export interface RequestTotal {
  bytes: number
  readonly limit: number
}

/** How a meter names its file in errors: the client's name (or `file 2`), and `file 2 "a.png"`. */
export interface MeterLabels {
  readonly name: string
  readonly position: string
}

/**
 * First stage of every file: counts the bytes the client sent, fails the moment they cross
 * `maxFileSize` or the request's `maxTotalSize` (before the byte that crosses it reaches the
 * storage), and hashes in the same pass. Chunks pass through untouched: no copy.
 */
export class UploadMeter extends Transform {
  bytes = 0
  readonly #limit: number
  readonly #total: RequestTotal
  readonly #labels: MeterLabels
  readonly #hash: Hash | null

  constructor (limit: number, total: RequestTotal, algorithm: string | false, labels: MeterLabels) {
    super()
    this.#limit = limit
    this.#total = total
    this.#labels = labels
    this.#hash = algorithm === false ? null : createHash(algorithm)
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length
    this.#total.bytes += chunk.length
    if (this.bytes > this.#limit) {
      callback(new FST_NEXURE_FILE_TOO_LARGE(this.#labels.name, this.#limit))
      return
    }
    if (this.#total.bytes > this.#total.limit) {
      callback(new FST_NEXURE_TOTAL_TOO_LARGE(this.#labels.position, this.#total.limit))
      return
    }
    this.#hash?.update(chunk)
    callback(null, chunk)
  }

  /** Hex digest of everything that passed; call once, after the stream finished. */
  digest (): string | null {
    return this.#hash === null ? null : this.#hash.digest('hex')
  }
}

/**
 * Last stage of every file: writes to `fs.createWriteStream(path)`.
 *
 * Busboy hands over slices of socket reads; a slow or chatty client produces many small ones,
 * and each small write is a thread-pool round trip and a syscall. Chunks smaller than a slab are
 * therefore copied into one pooled slab and written 64 KiB at a time; a chunk that is a slab or
 * larger, arriving while the slab is empty, is written as it is (copying it would buy nothing).
 * With `pool: false` every chunk is written as it comes.
 * The slab goes back to the pool only once no write can still be reading it: after the write
 * callback, or after the fs stream has closed.
 */
export class PooledFileWriter extends Writable {
  readonly path: string
  /** Settles when the file descriptor is closed (after success or destruction). */
  readonly fileClosed: Promise<void>
  readonly #out: WriteStream
  readonly #pool: BufferPool | null
  #slab: Buffer | null = null
  #used = 0

  constructor (path: string, pool: BufferPool | null) {
    super({ highWaterMark: pool?.slabSize ?? 64 * 1024 })
    this.path = path
    this.#pool = pool
    // 'wx': the name is ours and new; never follow or reuse something already there.
    this.#out = createWriteStream(path, { flags: 'wx', mode: 0o600 })
    this.fileClosed = new Promise(resolve => this.#out.once('close', resolve))
    this.#out.on('error', err => this.destroy(err))
  }

  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#take(chunk, callback)
  }

  #take (chunk: Buffer, callback: (error?: Error | null) => void): void {
    const pool = this.#pool
    if (pool === null || (this.#used === 0 && chunk.length >= pool.slabSize)) {
      if (this.#out.write(chunk)) callback()
      else this.#out.once('drain', callback)
      return
    }
    this.#slab ??= pool.acquire()
    const copied = chunk.copy(this.#slab, this.#used)
    this.#used += copied
    if (this.#used < this.#slab.length) {
      callback()
      return
    }
    this.#flush(err => {
      if (err) callback(err)
      else if (copied === chunk.length) callback()
      else this.#take(chunk.subarray(copied), callback)
    })
  }

  #flush (callback: (error?: Error | null) => void): void {
    const slab = this.#slab
    const used = this.#used
    this.#used = 0
    if (slab === null || used === 0) {
      callback()
      return
    }
    this.#out.write(slab.subarray(0, used), callback)
  }

  override _final (callback: (error?: Error | null) => void): void {
    this.#flush(err => {
      if (err) {
        callback(err)
        return
      }
      this.#out.end()
      this.fileClosed.then(() => {
        this.#releaseSlab()
        callback(this.#out.errored)
      }, callback)
    })
  }

  override _destroy (error: Error | null, callback: (error?: Error | null) => void): void {
    this.#out.destroy()
    this.fileClosed.then(() => {
      this.#releaseSlab()
      callback(error)
    }, callback)
  }

  #releaseSlab (): void {
    if (this.#slab !== null) this.#pool?.release(this.#slab)
    this.#slab = null
    this.#used = 0
  }
}
