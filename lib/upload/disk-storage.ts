import { mkdtemp, rm, statfs } from 'node:fs/promises'
import path from 'node:path'
import type { FastifyRequest } from 'fastify'
import type { BufferPool } from '../core/buffer-pool.js'
import { FST_NEXURE_INSUFFICIENT_STORAGE, FST_NEXURE_UPLOAD_WRITE_FAILED } from '../errors.js'
import { storedFileName } from './filename.js'
import { PooledFileWriter } from './spill.js'
import type { DiskStoredFile, StorageEngine, StorageSink, UploadFileInfo } from './storage.js'

export interface DiskStorageOptions {
  readonly tempDir: string
  readonly pool: BufferPool | null
  readonly minFreeSpace: number
}

/**
 * The default engine: each request's files in a directory of its own, created with `mkdtemp`
 * (mode 0700) under `tempDir` at the request's first file, never before; files under generated
 * names (`upload-<n>`), never the client's. Files are scratch copies (`durable: false`): nexure
 * has them removed after the request unless `keepFiles`.
 */
export class DiskStorage implements StorageEngine<DiskStoredFile> {
  readonly durable = false
  readonly #options: DiskStorageOptions
  // Per request: its directory (a promise, so that concurrent opens share one mkdtemp), and
  // the files committed in it.
  readonly #directories = new WeakMap<FastifyRequest, Promise<string>>()
  readonly #committed = new WeakMap<FastifyRequest, Set<string>>()

  constructor (options: DiskStorageOptions) {
    this.#options = options
  }

  async open (file: UploadFileInfo, request: FastifyRequest): Promise<StorageSink<DiskStoredFile>> {
    await this.#checkFreeSpace(file)
    const directory = await this.#directory(request)
    const writer = new PooledFileWriter(path.join(directory, storedFileName(file.index)), this.#options.pool)
    return {
      writable: writer,
      // The writer's _final waits for the descriptor to close: finished means on disk, closed.
      commit: async () => {
        let committed = this.#committed.get(request)
        if (committed === undefined) this.#committed.set(request, committed = new Set())
        committed.add(writer.path)
        return { path: writer.path }
      },
      abort: async () => {
        // Also after commit(): the request may end while nexure records the commit.
        this.#committed.get(request)?.delete(writer.path)
        writer.destroy()
        await writer.fileClosed
        // Deleted now, not at the end of the request: a file over a limit must not linger.
        await rm(writer.path, { force: true })
      }
    }
  }

  // Called once, after every sink of the request settled: partial files are gone already. The
  // directory goes as a whole unless it holds a committed file nexure keeps (keepFiles).
  async remove (files: readonly DiskStoredFile[], request: FastifyRequest): Promise<void> {
    const directory = await this.#directories.get(request)?.catch(() => null)
    const committed = this.#committed.get(request) ?? new Set<string>()
    this.#directories.delete(request)
    this.#committed.delete(request)
    if (directory == null) return
    for (const file of files) committed.delete(file.path)
    if (committed.size === 0) await rm(directory, { recursive: true, force: true })
    else await Promise.all(files.map(file => rm(file.path, { force: true })))
  }

  #directory (request: FastifyRequest): Promise<string> {
    let directory = this.#directories.get(request)
    if (directory === undefined) {
      directory = mkdtemp(path.join(this.#options.tempDir, 'nexure-')).catch((err: NodeJS.ErrnoException) => {
        throw new FST_NEXURE_UPLOAD_WRITE_FAILED(`cannot create the request's upload directory (${err.code ?? err.message})`)
      })
      this.#directories.set(request, directory)
    }
    return directory
  }

  // statfs reports what an unprivileged process may still use (bavail); checked before each file.
  async #checkFreeSpace (file: UploadFileInfo): Promise<void> {
    const { minFreeSpace, tempDir } = this.#options
    if (minFreeSpace === 0) return
    const fs = await statfs(tempDir).catch((err: NodeJS.ErrnoException) => {
      throw new FST_NEXURE_UPLOAD_WRITE_FAILED(`cannot read the free space of "${tempDir}" (${err.code ?? err.message})`)
    })
    const free = fs.bavail * fs.bsize
    if (free < minFreeSpace) {
      throw new FST_NEXURE_INSUFFICIENT_STORAGE(`file ${file.index} "${file.filename}"`, tempDir, free, minFreeSpace)
    }
  }
}
