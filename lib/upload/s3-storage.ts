import { randomUUID } from 'node:crypto'
import { PassThrough, Writable } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import { FST_NEXURE_INVALID_OPTION, FST_NEXURE_UPLOAD_WRITE_FAILED } from '../errors.js'
import type { StorageEngine, StorageSink, UploadFileInfo } from './storage.js'

/**
 * The part of `@aws-sdk/client-s3`'s `S3Client` that nexure relies on; pass an `S3Client`.
 * Typed structurally so that nexure's types do not need the AWS SDK installed.
 */
export interface S3ClientLike {
  send: (command: any, options?: any) => Promise<any>
  config: object
}

/** Options of `s3Storage`. */
export interface S3StorageOptions {
  /** An `S3Client` from `@aws-sdk/client-s3`, configured by the application (region, credentials, endpoint). */
  client: S3ClientLike
  /** The bucket every file goes into. */
  bucket: string
  /**
   * Prepended to every key (`uploads/2026/`).
   * @default ''
   */
  prefix?: string
  /**
   * Bytes per part of the multipart upload; S3 requires at least 5 MiB. A file that fits in
   * one part is sent with one PutObject instead.
   * @default 5242880 (5 MiB)
   */
  partSize?: number
  /**
   * Parts of one file in flight at once. Memory per file is about (queueSize + 1) × partSize.
   * @default 4
   */
  queueSize?: number
  /**
   * The key of each file, after `prefix`. Never built from the client's file name by default:
   * that name is untrusted.
   * @default () => crypto.randomUUID()
   */
  key?: (file: UploadFileInfo, request: FastifyRequest) => string
}

/** What `s3Storage` adds to an `UploadedFile`: `request.uploads<S3StoredFile>()`. */
export interface S3StoredFile {
  /** The object's key, prefix included. */
  key: string
  /** The bucket it is in. */
  bucket: string
  /** The object's ETag as S3 returns it (quoted; `"<md5>-<parts>"` for a multipart upload), or null. */
  etag: string | null
}

const MIN_PART_SIZE = 5 * 1024 * 1024
const MAX_KEY_BYTES = 1024
const DELETE_BATCH = 1000

// The SDK is an optional peer dependency: loaded on first use, with a clear error when absent.
interface AwsSdk {
  Upload: new (options: Record<string, unknown>) => { done: () => Promise<{ ETag?: string }>, uploadId?: string }
  DeleteObjectsCommand: new (input: Record<string, unknown>) => unknown
  AbortMultipartUploadCommand: new (input: Record<string, unknown>) => unknown
}
export type AwsSdkLoader = () => Promise<AwsSdk>

const loadAwsSdk: AwsSdkLoader = async () => {
  const [storage, s3] = await Promise.all([import('@aws-sdk/lib-storage'), import('@aws-sdk/client-s3')])
  return {
    Upload: storage.Upload as unknown as AwsSdk['Upload'],
    DeleteObjectsCommand: s3.DeleteObjectsCommand as unknown as AwsSdk['DeleteObjectsCommand'],
    AbortMultipartUploadCommand: s3.AbortMultipartUploadCommand as unknown as AwsSdk['AbortMultipartUploadCommand']
  }
}

function invalid (name: string, why: string): Error {
  return new FST_NEXURE_INVALID_OPTION(`s3Storage ${name}`, why)
}

function describe (value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : typeof value === 'function' ? 'a function' : String(value)
}

function checkOptions (options: S3StorageOptions): Required<S3StorageOptions> {
  if (options === null || typeof options !== 'object') throw invalid('options', `expected an object, got ${describe(options)}`)
  const { client, bucket, prefix = '', partSize = MIN_PART_SIZE, queueSize = 4, key = () => randomUUID() } = options
  if (client === null || typeof client !== 'object' || typeof client.send !== 'function') {
    throw invalid('client', `expected an S3Client from @aws-sdk/client-s3, got ${describe(client)}`)
  }
  if (typeof bucket !== 'string' || bucket === '') throw invalid('bucket', `expected a bucket name, got ${describe(bucket)}`)
  if (typeof prefix !== 'string') throw invalid('prefix', `expected a string, got ${describe(prefix)}`)
  if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE) {
    throw invalid('partSize', `expected an integer of at least ${MIN_PART_SIZE} (5 MiB, S3's smallest part), got ${describe(partSize)}`)
  }
  if (!Number.isSafeInteger(queueSize) || queueSize < 1) throw invalid('queueSize', `expected an integer of at least 1, got ${describe(queueSize)}`)
  if (typeof key !== 'function') throw invalid('key', `expected a function (file, request) => string, got ${describe(key)}`)
  return { client, bucket, prefix, partSize, queueSize, key }
}

type Outcome = Promise<{ ok: true, etag: string | null } | { ok: false, error: Error }>

/**
 * What nexure writes into: passes chunks on to the SDK's body stream with its backpressure, and
 * fails with the storage's own error (NoSuchBucket, AccessDenied, ...) as soon as the upload
 * fails, even while waiting for room, and even though the SDK closes the body quietly when it
 * gives up on it.
 */
class S3BodyWriter extends Writable {
  readonly #body: PassThrough
  #failure: Error | null = null

  constructor (body: PassThrough, outcome: Outcome, failed: (error: Error) => Error) {
    super({ highWaterMark: 64 * 1024 })
    this.#body = body
    void outcome.then(settled => {
      if (settled.ok) return
      this.#failure = failed(settled.error)
      this.destroy(this.#failure)
    })
  }

  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#failure !== null) {
      callback(this.#failure)
      return
    }
    if (this.#body.write(chunk)) {
      callback()
      return
    }
    // Wait for room; a failure meanwhile destroys this stream, which ends the wait.
    const onDrain = (): void => {
      this.off('close', onClose)
      callback()
    }
    const onClose = (): void => {
      this.#body.off('drain', onDrain)
    }
    this.#body.once('drain', onDrain)
    this.once('close', onClose)
  }

  override _final (callback: (error?: Error | null) => void): void {
    this.#body.end(callback)
  }
}

/**
 * Streams each file from the socket into one S3 object with `@aws-sdk/lib-storage`'s `Upload`
 * (one PutObject for a file within one part, a multipart upload above), with backpressure:
 * the socket is read only as fast as parts are sent. Works with any S3-compatible store.
 */
export function s3Storage (options: S3StorageOptions): StorageEngine<S3StoredFile> {
  return createS3Storage(options, loadAwsSdk)
}

/** `s3Storage` with the SDK loader as a parameter, so that a missing SDK can be tested. */
export function createS3Storage (options: S3StorageOptions, load: AwsSdkLoader): StorageEngine<S3StoredFile> {
  const settings = checkOptions(options)
  const { client, bucket, prefix, partSize, queueSize } = settings
  let sdk: Promise<AwsSdk> | null = null
  const loaded = (): Promise<AwsSdk> => {
    sdk ??= load().catch((err: NodeJS.ErrnoException) => {
      sdk = null
      throw invalid('storage', 'needs the optional peer dependencies @aws-sdk/lib-storage and @aws-sdk/client-s3 ' +
        `(npm install @aws-sdk/lib-storage @aws-sdk/client-s3): ${err.code ?? ''} ${err.message}`.trim())
    })
    return sdk
  }

  function keyFor (file: UploadFileInfo, request: FastifyRequest): string {
    const key = prefix + String(settings.key(file, request))
    if (key === '' || Buffer.byteLength(key) > MAX_KEY_BYTES) {
      throw new FST_NEXURE_UPLOAD_WRITE_FAILED(`s3Storage key for file ${file.index} "${file.filename}" must be 1 to ${MAX_KEY_BYTES} bytes, got ${describe(key.slice(0, 80))}`)
    }
    return key
  }

  async function deleteKeys (keys: readonly string[], request: FastifyRequest): Promise<void> {
    const { DeleteObjectsCommand } = await loaded()
    for (let start = 0; start < keys.length; start += DELETE_BATCH) {
      const batch = keys.slice(start, start + DELETE_BATCH)
      const answer = await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map(Key => ({ Key })), Quiet: true } })) as { Errors?: unknown[] }
      if (answer.Errors !== undefined && answer.Errors.length > 0) {
        request.log.error({ bucket, errors: answer.Errors }, 'nexure: s3Storage could not delete every object of a failed upload')
      }
    }
  }

  return {
    durable: true,

    async ready () {
      await loaded()
    },

    async open (file, request): Promise<StorageSink<S3StoredFile>> {
      const { Upload, AbortMultipartUploadCommand } = await loaded()
      const key = keyFor(file, request)
      const where = `file ${file.index} "${file.filename}" to s3://${bucket}/${key}`
      const failed = (error: Error): Error => new FST_NEXURE_UPLOAD_WRITE_FAILED(`writing ${where} failed (${error.name}: ${error.message})`)
      // The SDK pulls from `body` part by part; while its queue is full it stops reading,
      // `body` fills, and the backpressure reaches the socket.
      const body = new PassThrough({ highWaterMark: 64 * 1024 })
      body.on('error', () => {}) // the SDK reads body's errors through its iterator
      const upload = new Upload({ client, params: { Bucket: bucket, Key: key, Body: body }, partSize, queueSize, leavePartsOnError: false })
      const outcome = upload.done().then(
        result => ({ ok: true as const, etag: result.ETag ?? null }),
        (error: Error) => ({ ok: false as const, error })
      )
      const writable = new S3BodyWriter(body, outcome, failed)
      return {
        writable,
        async commit () {
          const settled = await outcome
          if (!settled.ok) throw failed(settled.error)
          return { key, bucket, etag: settled.etag }
        },
        async abort (reason) {
          // Not upload.abort(): it rejects done() at once but sends AbortMultipartUpload only once
          // the SDK reads the body again, which a stalled body never lets it do, and parts in
          // flight could land after it. Ending the body with an error makes the SDK wait for its
          // parts in flight, then abort the multipart upload; done() settles after that.
          writable.destroy()
          body.destroy(reason)
          const settled = await outcome
          try {
            if (settled.ok) {
              await deleteKeys([key], request) // it was complete before the failure reached it
            } else if (upload.uploadId !== undefined) {
              // Again, in case the SDK's own abort failed; S3 answers NoSuchUpload if it did not.
              await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: upload.uploadId }))
            }
          } catch (err) {
            if ((err as Error).name !== 'NoSuchUpload') request.log.error({ err, bucket, key }, 'nexure: s3Storage could not undo a failed upload')
          }
        }
      }
    },

    async remove (files, request) {
      if (files.length === 0) return
      await deleteKeys(files.map(file => file.key), request)
    }
  }
}
