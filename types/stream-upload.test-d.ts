import Fastify from 'fastify'
import { Transform } from 'node:stream'
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import {
  BufferPool,
  streamUpload,
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
expectAssignable<StreamUploadOptions>({})
expectNotAssignable<StreamUploadOptions>({ hash: true })
expectNotAssignable<StreamUploadOptions>({ maxFileSize: '1gb' })
expectNotAssignable<StreamUploadOptions>({ keepFiles: 'yes' })
expectNotAssignable<StreamUploadOptions>({ transforms: [() => 'not a transform'] })
expectNotAssignable<StreamUploadOptions>({ tempDir: 42 })

// Per-route options
expectAssignable<StreamUploadRouteOptions>({ maxFileSize: 10, hash: 'md5', keepFiles: false, tempDir: '/tmp' })
expectNotAssignable<StreamUploadRouteOptions>({ pool: new BufferPool() })
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
  expectType<UploadFields>(request.uploadFields)
  expectType<string | string[] | undefined>(request.uploadFields.title)
  const saved = await request.saveUploads()
  expectType<SavedUploads>(saved)
  expectType<UploadedFile[]>(saved.files)
  expectType<UploadFields>(saved.fields)
  expectError(request.uploadFields = {})
  return saved.files.map(f => f.size)
})
