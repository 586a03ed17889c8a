import Fastify from 'fastify'
import { Transform } from 'node:stream'
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import { S3Client } from '@aws-sdk/client-s3'
import { Writable } from 'node:stream'
import {
  BufferPool,
  s3Storage,
  streamUpload,
  type S3StoredFile,
  type StorageEngine,
  type UploadFileInfo,
  type UploadStats,
  type SavedUploads,
  type StreamUploadOptions,
  type StreamUploadRouteOptions,
  type UploadedFile,
  type UploadFields
} from 'nexure'

const app = Fastify()

// Options
app.register(streamUpload)
app.register(streamUpload, {
  tempDir: '/var/tmp/uploads',
  maxFileSize: 1024 ** 3,
  maxFiles: 10,
  maxFields: 100,
  maxFieldSize: 1024,
  keepFiles: true,
  hash: 'sha256',
  transforms: [(request, reply) => {
    expectType<string>(request.url)
    expectType<number>(reply.statusCode)
    return new Transform()
  }],
  pool: new BufferPool()
})
app.register(streamUpload, { hash: false, pool: false })
app.register(streamUpload, {
  storage: 'disk',
  maxTotalSize: 10 * 1024 ** 3,
  minFreeSpace: 1024 ** 3,
  fileFilter: (file, head, request) => {
    expectType<UploadFileInfo>(file)
    expectType<string>(file.mimetype)
    expectType<number>(file.index)
    expectType<Buffer>(head)
    expectType<string>(request.url)
    return head[0] === 0x89
  }
})
app.register(streamUpload, { fileFilter: async () => true })
app.register(streamUpload, { fileFilter: null })
expectNotAssignable<StreamUploadOptions>({ fileFilter: () => 'yes' })
expectNotAssignable<StreamUploadOptions>({ storage: 's3' })
expectNotAssignable<StreamUploadOptions>({ maxTotalSize: '1gb' })

// Storage engines: s3Storage takes an S3Client; a custom engine implements the interface.
const client = new S3Client({ region: 'us-east-1' })
app.register(streamUpload, { storage: s3Storage({ client, bucket: 'uploads' }) })
app.register(streamUpload, {
  storage: s3Storage({ client, bucket: 'uploads', prefix: 'in/', partSize: 8 * 1024 ** 2, queueSize: 2, key: (file, request) => `${request.id}/${file.index}` })
})
expectError(s3Storage({ client }))
expectError(s3Storage({ client, bucket: 'b', partSize: '5mb' }))
expectError(s3Storage({ client, bucket: 'b', key: () => 42 }))
const memory: StorageEngine<{ id: string }> = {
  durable: true,
  async open (file, request) {
    expectType<UploadFileInfo>(file)
    expectType<string>(request.id)
    return { writable: new Writable(), commit: async () => ({ id: String(file.index) }), abort: async (reason: Error) => { expectType<Error>(reason) } }
  },
  async remove (files) { expectType<ReadonlyArray<{ id: string }>>(files) }
}
app.register(streamUpload, { storage: memory })
expectNotAssignable<StorageEngine>({ durable: true, open: async () => ({}) })
expectAssignable<StreamUploadOptions>({})
expectNotAssignable<StreamUploadOptions>({ hash: true })
expectNotAssignable<StreamUploadOptions>({ maxFileSize: '1gb' })
expectNotAssignable<StreamUploadOptions>({ keepFiles: 'yes' })
expectNotAssignable<StreamUploadOptions>({ transforms: [() => 'not a transform'] })
expectNotAssignable<StreamUploadOptions>({ tempDir: 42 })
expectAssignable<StreamUploadOptions>({ drainLimit: 0 })
expectNotAssignable<StreamUploadOptions>({ drainLimit: '64kb' })

// Per-route options
expectAssignable<StreamUploadRouteOptions>({ maxFileSize: 10, hash: 'md5', keepFiles: false, tempDir: '/tmp' })
expectAssignable<StreamUploadRouteOptions>({ storage: memory, maxTotalSize: 100, fileFilter: () => false, minFreeSpace: 0 })
expectNotAssignable<StreamUploadRouteOptions>({ pool: new BufferPool() })
expectNotAssignable<StreamUploadRouteOptions>({ drainLimit: 0 })
app.post('/route', { config: { streamUpload: { maxFiles: 1, hash: 'sha1' } } }, async () => 'ok')
expectError(app.post('/bad', { config: { streamUpload: { maxFiles: '1' } } }, async () => 'ok'))

// The request API, inside a real handler
app.post('/upload', async (request) => {
  expectType<AsyncIterableIterator<UploadedFile>>(request.uploads())
  for await (const file of request.uploads()) {
    expectType<string>(file.fieldname)
    expectType<string>(file.filename)
    expectType<string>(file.mimetype)
    expectType<string>(file.encoding)
    expectType<string>(file.path)
    expectType<number>(file.size)
    expectType<string | null>(file.hash)
  }
  for await (const object of request.uploads<S3StoredFile>()) {
    expectType<string>(object.key)
    expectType<string>(object.bucket)
    expectType<string | null>(object.etag)
    expectType<number>(object.size)
    expectType<string | null>(object.hash)
  }
  expectType<UploadStats>(request.uploadStats)
  expectType<number>(request.uploadStats.bytesReceived)
  expectType<number>(request.uploadStats.files)
  expectType<number | undefined>(request.uploadStats.currentFile?.bytes)
  expectError(request.uploadStats = { bytesReceived: 0, files: 0, currentFile: null })
  expectType<UploadFields>(request.uploadFields)
  expectType<string | string[] | undefined>(request.uploadFields.title)
  const saved = await request.saveUploads()
  expectType<SavedUploads>(saved)
  expectType<UploadedFile[]>(saved.files)
  expectType<UploadFields>(saved.fields)
  expectError(request.uploadFields = {})
  return saved.files.map(f => f.size)
})
