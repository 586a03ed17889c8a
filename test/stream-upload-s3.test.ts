import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import net from 'node:net'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { s3Storage, streamUpload, type S3StorageOptions, type S3StoredFile, type StreamUploadOptions } from '../lib/index.js'
import { createS3Storage } from '../lib/upload/s3-storage.js'
import { prng } from './helpers/chunking.js'
import { abortedUpload, contentHash, eventually, multipartBody, type Part } from './helpers/multipart.js'
import { s3Client, startS3, type TestS3 } from './helpers/s3.js'

// s3Storage against a real S3-compatible server (s3rver on loopback) through the real AWS SDK:
// files land as objects, and a failure of any kind leaves no object and no pending multipart
// upload behind.

const MiB = 1024 * 1024

async function s3App (t: { teardown: (fn: () => unknown) => void }, s3: TestS3, options: Partial<S3StorageOptions> = {}, upload: StreamUploadOptions = {}): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload, { hash: 'sha256', ...upload, storage: s3Storage({ client: s3.client, bucket: s3.bucket, ...options }) })
  return app
}

async function post (url: string, parts: Part[]): Promise<{ status: number, body: any }> {
  const body = multipartBody(parts)
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': body.contentType, 'content-length': String(body.length) },
    body: Readable.from(body.chunks())
  })
  return { status: res.statusCode, body: await res.body.json() }
}

async function nothingLeft (s3: TestS3): Promise<boolean> {
  return (await s3.keys()).length === 0 && (await s3.pendingUploads()).length === 0
}

t.test('files stream into objects: one PutObject for a small file, a multipart upload for a large one', async t => {
  const s3 = await startS3(t)
  // The SDK's commands, as they are sent (lib-storage needs only send() and config of a client).
  const commands: string[] = []
  const client = { config: s3.client.config, send: (command: object) => { commands.push(command.constructor.name); return s3.client.send(command as never) } }
  const app = await s3App(t, s3, { prefix: 'in/', client })
  app.post('/upload', async request => {
    const files = []
    for await (const file of request.uploads<S3StoredFile>()) files.push(file)
    return { files, fields: request.uploadFields, stats: request.uploadStats }
  })
  const url = `${await app.listen({ port: 0, host: '127.0.0.1' })}/upload`
  const small = { size: 100_000, seed: 1 }
  const large = { size: 12 * MiB + 3, seed: 2 }
  const res = await post(url, [
    { name: 'title', value: 'holidays' },
    { name: 'a', filename: 'a.bin', content: small },
    { name: 'b', filename: '../../b.bin', contentType: 'image/png', content: large }
  ])
  t.equal(res.status, 200)
  const [a, b] = res.body.files as Array<S3StoredFile & { size: number, hash: string, filename: string, mimetype: string }>
  t.match(a, { fieldname: 'a', filename: 'a.bin', size: small.size, hash: contentHash(small), bucket: s3.bucket })
  t.match(b, { fieldname: 'b', filename: 'b.bin', mimetype: 'image/png', size: large.size, hash: contentHash(large), bucket: s3.bucket })
  t.match(a!.key, /^in\/[0-9a-f-]{36}$/, 'a generated key under the prefix, not the client\'s name')
  t.match(a!.etag, /^"[0-9a-f]{32}"$/)
  t.match(b!.etag, /^"[0-9a-f]{32}"$/, 's3rver gives a completed multipart upload a plain MD5 ETag')
  t.same(commands, ['PutObjectCommand', 'CreateMultipartUploadCommand', 'UploadPartCommand', 'UploadPartCommand', 'UploadPartCommand', 'CompleteMultipartUploadCommand'],
    'one PutObject for the small file; three 5 MiB parts for the large one')
  t.same(res.body.fields, { title: 'holidays' })
  t.same(res.body.stats, { bytesReceived: res.body.stats.bytesReceived, files: 2, currentFile: null })
  t.same(await s3.keys(), [a!.key, b!.key].sort())
  t.equal(contentHash(await s3.object(a!.key)), a!.hash, 'the object holds exactly the bytes sent')
  t.equal(contentHash(await s3.object(b!.key)), b!.hash)
  t.same(await s3.pendingUploads(), [])
})

t.test('a file over maxFileSize leaves no object and no pending upload, and takes the files before it along', async t => {
  const s3 = await startS3(t)
  const app = await s3App(t, s3, {}, { maxFileSize: 7 * MiB })
  let stored: string[] = []
  app.post('/upload', async request => {
    for await (const file of request.uploads<S3StoredFile>()) stored.push(file.key)
    return 'not reached'
  })
  const url = `${await app.listen({ port: 0, host: '127.0.0.1' })}/upload`
  const res = await post(url, [
    { name: 'a', filename: 'ok.bin', content: { size: 50_000 } },
    { name: 'b', filename: 'huge.bin', content: { size: 20 * MiB } }
  ])
  t.equal(res.status, 413)
  t.equal(res.body.code, 'FST_NEXURE_FILE_TOO_LARGE')
  t.equal(stored.length, 1, 'the first file was stored and handed to the handler')
  t.ok(await nothingLeft(s3), 'no object (the first one deleted too) and no pending multipart upload')
  stored = []
})

t.test('a handler that fails after the upload removes the objects: all or nothing', async t => {
  const s3 = await startS3(t)
  const app = await s3App(t, s3)
  let keys: string[] = []
  app.post('/upload', async request => {
    const saved = await request.saveUploads<S3StoredFile>()
    keys = saved.files.map(f => f.key)
    throw Object.assign(new Error('the database refused the row'), { statusCode: 503 })
  })
  app.post('/ok', async request => (await request.saveUploads<S3StoredFile>()).files.map(f => f.key))
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const parts: Part[] = [{ name: 'a', filename: 'a', content: 'one' }, { name: 'b', filename: 'b', content: { size: 6 * MiB } }]
  const res = await post(`${base}/upload`, parts)
  t.equal(res.status, 503)
  t.equal(keys.length, 2)
  t.ok(await eventually(() => nothingLeft(s3)), 'both objects deleted after the error answer')
  const ok = await post(`${base}/ok`, parts)
  t.equal(ok.status, 200)
  t.same(await s3.keys(), [...ok.body].sort(), 'a successful request keeps its objects')
})

t.test('a storage error is a 500 that says where, before the rest of the body is read', async t => {
  const s3 = await startS3(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload, { storage: s3Storage({ client: s3.client, bucket: 'no-such-bucket' }) })
  let failure: { code: string, message: string, statusCode: number, receivedMiB: number } | null = null
  app.post('/upload', async request => {
    try {
      return await request.saveUploads()
    } catch (err) {
      const { code, message, statusCode } = err as { code: string, message: string, statusCode: number }
      failure = { code, message, statusCode, receivedMiB: request.uploadStats.bytesReceived / MiB }
      throw err
    }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as net.AddressInfo).port
  const body = multipartBody([{ name: 'f', filename: 'f.bin', content: { size: 200 * MiB } }])
  const socket = net.connect(port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  let response = ''
  socket.setEncoding('latin1')
  socket.on('data', (data: string) => { response += data })
  socket.write(`POST /upload HTTP/1.1\r\nhost: x\r\ncontent-type: ${body.contentType}\r\ncontent-length: ${body.length}\r\n\r\n`)
  // The client sends until it gets an answer or the connection ends. (An answer given with
  // most of the body unread closes the connection; a client still sending may then see a
  // reset instead of the answer, so the error is checked on the server side.)
  let ended = false
  const stop = new Promise(resolve => { socket.once('data', resolve); socket.once('close', resolve) })
  socket.once('close', () => { ended = true })
  for (const chunk of body.chunks()) {
    if (response !== '' || ended) break
    if (!socket.write(chunk)) await Promise.race([new Promise(resolve => socket.once('drain', resolve)), stop])
  }
  t.ok(await eventually(async () => failure !== null, 10_000), 'the upload failed')
  t.equal(failure!.code, 'FST_NEXURE_UPLOAD_WRITE_FAILED')
  t.equal(failure!.statusCode, 500)
  t.match(failure!.message, /^Could not store the upload: writing file 1 "f\.bin" to s3:\/\/no-such-bucket\/[0-9a-f-]{36} failed \(NoSuchBucket: /)
  t.ok(failure!.receivedMiB < 100, `it failed after ${failure!.receivedMiB.toFixed(1)} MiB of 200 had arrived`)
  if (response !== '') t.match(response, /^HTTP\/1\.1 500 /)
  t.same(await s3.keys(), [])
})

t.test('100 uploads cut off at random points leave no object and no pending multipart upload', async t => {
  const seed = Number(process.env.NEXURE_S3_ABORT_SEED ?? 20261202)
  t.comment(`seed ${seed} (replay with NEXURE_S3_ABORT_SEED=${seed})`)
  const next = prng(seed)
  const s3 = await startS3(t)
  const app = await s3App(t, s3)
  let started = 0
  let settled = 0
  let filesStored = 0
  app.post('/iterate', async request => {
    started++
    try {
      for await (const file of request.uploads<S3StoredFile>()) {
        filesStored++
        await sleep(file.size % 3)
      }
    } finally { settled++ }
    return 'done'
  })
  app.post('/save', async request => {
    started++
    try { return await request.saveUploads() } finally { settled++ }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as net.AddressInfo).port
  // A field, a file within one part (PutObject), and one of two parts (a multipart upload).
  const body = multipartBody([
    { name: 'title', value: 'report' },
    { name: 'a', filename: 'a.bin', content: { size: 150_000, seed: 1 } },
    { name: 'b', filename: 'b.bin', content: { size: 6 * MiB, seed: 2 } }
  ]).toBuffer()
  const boundary = body.subarray(2, body.indexOf('\r\n')).toString()
  const headFor = (route: string): string =>
    `POST ${route} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: multipart/form-data; boundary=${boundary}\r\ncontent-length: ${body.length}\r\n\r\n`
  const total = 100
  let sent = 0
  const startedAt = Date.now()
  async function worker (): Promise<void> {
    while (sent < total) {
      sent++
      const route = next() < 0.5 ? '/iterate' : '/save'
      const cut = Math.floor(next() * body.length) // never the whole body
      const pauseMs = next() < 0.5 ? 0 : Math.floor(next() * 30)
      await abortedUpload(port, headFor(route), body, cut, pauseMs)
    }
  }
  await Promise.all(Array.from({ length: 4 }, worker))
  t.comment(`${total} cut-off uploads in ${Date.now() - startedAt} ms; ${filesStored} files had been stored before their request failed`)
  t.ok(filesStored > 0, 'some requests failed after files were already stored')
  t.ok(await eventually(async () => settled === started, 20_000), 'every handler that started has finished (none hangs)')
  t.ok(await eventually(() => nothingLeft(s3), 20_000), 'settles to nothing left')
  t.same(await s3.keys(), [], 'ListObjectsV2 shows no object')
  t.same(await s3.pendingUploads(), [], 'no incomplete multipart upload in s3rver\'s data directory')
})

t.test('s3Storage checks its options when it is created', async t => {
  const client = s3Client('http://127.0.0.1:9')
  t.teardown(() => client.destroy())
  const bad: Array<[Partial<S3StorageOptions>, RegExp]> = [
    [{ bucket: '' }, /s3Storage bucket: expected a bucket name/],
    [{ partSize: 1024 }, /s3Storage partSize: expected an integer of at least 5242880/],
    [{ queueSize: 0 }, /s3Storage queueSize/],
    [{ prefix: 3 as unknown as string }, /s3Storage prefix/],
    [{ client: {} as S3StorageOptions['client'] }, /s3Storage client: expected an S3Client/]
  ]
  for (const [options, message] of bad) {
    t.throws(() => s3Storage({ client, bucket: 'b', ...options }), { code: 'FST_NEXURE_INVALID_OPTION', message })
  }
})

t.test('without the AWS SDK installed, registration fails and says what to install', async t => {
  const client = s3Client('http://127.0.0.1:9')
  t.teardown(() => client.destroy())
  const missing = Object.assign(new Error("Cannot find package '@aws-sdk/lib-storage'"), { code: 'ERR_MODULE_NOT_FOUND' })
  const storage = createS3Storage({ client, bucket: 'b' }, async () => { throw missing })
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(streamUpload, { storage }) }, {
    code: 'FST_NEXURE_INVALID_OPTION',
    message: /needs the optional peer dependencies @aws-sdk\/lib-storage and @aws-sdk\/client-s3 \(npm install @aws-sdk\/lib-storage @aws-sdk\/client-s3\): ERR_MODULE_NOT_FOUND/
  })
})
