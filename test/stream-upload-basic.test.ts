import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import multipart from '@fastify/multipart'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Transform } from 'node:stream'
import { request as httpRequest } from 'undici'
import { streamUpload, type StreamUploadOptions, type UploadedFile } from '../lib/index.js'
import { contentHash, eventually, listTree, multipartBody, patternChunks, type Part, testTempDir, type HasTeardown } from './helpers/multipart.js'

const execFileAsync = promisify(execFile)
const tempRoot = (t: HasTeardown): Promise<string> => testTempDir(t, 'nexure-upload-basic-')

async function server (t: HasTeardown, options: StreamUploadOptions, setup: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(streamUpload, options)
  setup(app)
  t.teardown(() => app.close())
  return app
}

function inject (app: FastifyInstance, parts: Part[], url = '/upload') {
  const body = multipartBody(parts)
  return app.inject({ method: 'POST', url, headers: { 'content-type': body.contentType }, payload: body.toBuffer() })
}


t.test('uploads() yields every file on disk with metadata, size and hash; fields arrive too', async t => {
  const tempDir = await tempRoot(t)
  const seen: Array<UploadedFile & { onDisk: string }> = []
  const app = await server(t, { tempDir, hash: 'sha256' }, app => {
    app.post('/upload', async request => {
      for await (const file of request.uploads()) {
        seen.push({ ...file, onDisk: await readFile(file.path, 'latin1') })
      }
      return { fields: request.uploadFields }
    })
  })
  const big = { size: 300_000, chunkSize: 1000, seed: 3 }
  const res = await inject(app, [
    { name: 'title', value: 'holiday' },
    { name: 'a', filename: 'a.txt', contentType: 'text/plain', content: 'hello' },
    { name: 'tag', value: 'x' },
    { name: 'tag', value: 'y' },
    { name: 'meta', value: '{"n":1}', contentType: 'application/json' },
    { name: 'b', filename: 'big.bin', content: big }
  ])
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json(), { fields: { title: 'holiday', tag: ['x', 'y'], meta: '{"n":1}' } })
  t.equal(seen.length, 2)
  const [a, b] = seen
  t.match(a, { fieldname: 'a', filename: 'a.txt', mimetype: 'text/plain', encoding: '7bit', size: 5, hash: contentHash('hello'), onDisk: 'hello' })
  t.match(b, { fieldname: 'b', filename: 'big.bin', mimetype: 'application/octet-stream', size: big.size, hash: contentHash(big) })
  t.equal(a!.hash!.length, 64)
  t.equal(path.dirname(a!.path), path.dirname(b!.path), 'one directory per request')
  t.equal(path.dirname(path.dirname(a!.path)), tempDir, 'the request directory is directly under tempDir')
  t.match(path.basename(path.dirname(a!.path)), /^nexure-/)
  t.ok(await eventually(async () => (await listTree(tempDir)).length === 0), 'removed after the response')
})

t.test('hash: false gives null; files go to os.tmpdir() by default', async t => {
  let file: UploadedFile | undefined
  const app = await server(t, {}, app => {
    app.post('/upload', async request => {
      for await (const f of request.uploads()) file = f
      return 'ok'
    })
  })
  const res = await inject(app, [{ name: 'f', filename: 'x', content: 'abc' }])
  t.equal(res.statusCode, 200)
  t.equal(file?.hash, null)
  t.equal(path.dirname(path.dirname(file!.path)), tmpdir())
  t.ok(await eventually(() => stat(path.dirname(file!.path)).then(() => false, () => true)), 'its directory is removed')
})

t.test('saveUploads() consumes everything and returns { files, fields }; a second call returns the same result', async t => {
  const tempDir = await tempRoot(t)
  const app = await server(t, { tempDir, hash: 'md5' }, app => {
    app.post('/upload', async request => {
      const saved = await request.saveUploads()
      const again = await request.saveUploads()
      return { same: saved === again, fields: saved.fields, files: saved.files.map(f => ({ name: f.filename, size: f.size, hash: f.hash })) }
    })
  })
  const res = await inject(app, [
    { name: 'f1', filename: 'one.txt', content: 'one' },
    { name: 'note', value: 'n' },
    { name: 'f2', filename: 'two.txt', content: 'second' }
  ])
  t.same(res.json(), {
    same: true,
    fields: { note: 'n' },
    files: [{ name: 'one.txt', size: 3, hash: contentHash('one', 'md5') }, { name: 'two.txt', size: 6, hash: contentHash('second', 'md5') }]
  })
  t.ok(await eventually(async () => (await listTree(tempDir)).length === 0))
})

t.test('a body that is not multipart is a 415 that says multipart/form-data was expected', async t => {
  const app = await server(t, {}, app => {
    app.post('/upload', async request => {
      for await (const file of request.uploads()) void file
      return 'unreachable'
    })
    app.post('/save', async request => request.saveUploads())
  })
  for (const url of ['/upload', '/save']) {
    const res = await app.inject({ method: 'POST', url, payload: { a: 1 } })
    t.equal(res.statusCode, 415, url)
    t.equal(res.json().code, 'FST_NEXURE_UNSUPPORTED_MEDIA_TYPE')
    t.match(res.json().message, /"application\/json".*expected multipart\/form-data/)
  }
})

t.test('uploads() twice, or saveUploads() after uploads(), is FST_NEXURE_BODY_CONSUMED', async t => {
  const app = await server(t, {}, app => {
    app.post('/twice', async request => {
      request.uploads()
      request.uploads()
    })
    app.post('/mixed', async request => {
      for await (const f of request.uploads()) void f
      return request.saveUploads()
    })
  })
  for (const url of ['/twice', '/mixed']) {
    const res = await inject(app, [{ name: 'f', filename: 'x', content: 'abc' }], url)
    t.equal(res.statusCode, 500)
    t.equal(res.json().code, 'FST_NEXURE_BODY_CONSUMED')
    t.match(res.json().message, /uploads\(\)/)
  }
})

t.test('per-file transforms run in order, are made once per file, and see the request', async t => {
  const tempDir = await tempRoot(t)
  let made = 0
  const upper = (): Transform => {
    made++
    return new Transform({ transform (chunk: Buffer, _e, cb) { cb(null, Buffer.from(chunk.toString('latin1').toUpperCase(), 'latin1')) } })
  }
  const suffix = (request: { url: string }): Transform => new Transform({
    transform (chunk, _e, cb) { cb(null, chunk) },
    flush (cb) { cb(null, Buffer.from(`<${request.url}`)) }
  })
  const app = await server(t, { tempDir, hash: 'sha256', transforms: [upper, suffix] }, app => {
    app.post('/upload', async request => {
      const out = []
      for await (const file of request.uploads()) out.push({ disk: await readFile(file.path, 'latin1'), size: file.size, hash: file.hash })
      return out
    })
  })
  const res = await inject(app, [{ name: 'a', filename: 'a', content: 'abc' }, { name: 'b', filename: 'b', content: 'xy' }])
  t.same(res.json(), [
    { disk: 'ABC</upload', size: 3, hash: contentHash('abc') },
    { disk: 'XY</upload', size: 2, hash: contentHash('xy') }
  ], 'size and hash are of the bytes the client sent; the disk holds the transformed bytes')
  t.equal(made, 2)
})

t.test('a failing transform is a 500 FST_NEXURE_TRANSFORM_FAILED naming the file, unless it carries a status', async t => {
  const tempDir = await tempRoot(t)
  const failing = (status?: number) => (): Transform => new Transform({
    transform (_chunk, _e, cb) { cb(Object.assign(new Error('virus found'), status === undefined ? {} : { statusCode: status })) }
  })
  const app = await server(t, { tempDir }, app => {
    app.post('/plain', { config: { streamUpload: { transforms: [failing()] } } }, async request => request.saveUploads())
    app.post('/coded', { config: { streamUpload: { transforms: [failing(422)] } } }, async request => request.saveUploads())
    app.post('/throws', { config: { streamUpload: { transforms: [() => { throw new Error('factory broke') }] } } }, async request => request.saveUploads())
  })
  const plain = await inject(app, [{ name: 'f', filename: 'eicar.com', content: 'x' }], '/plain')
  t.equal(plain.statusCode, 500)
  t.equal(plain.json().code, 'FST_NEXURE_TRANSFORM_FAILED')
  t.match(plain.json().message, /virus found \(in file 1 "eicar\.com"/)
  const coded = await inject(app, [{ name: 'f', filename: 'eicar.com', content: 'x' }], '/coded')
  t.equal(coded.statusCode, 422)
  const factory = await inject(app, [{ name: 'f', filename: 'f', content: 'x' }], '/throws')
  t.equal(factory.json().code, 'FST_NEXURE_TRANSFORM_FAILED')
  t.match(factory.json().message, /factory broke/)
  t.ok(await eventually(async () => (await listTree(tempDir)).length === 0))
})

t.test('route config.streamUpload overrides the plugin options for that route only', async t => {
  const tempDir = await tempRoot(t)
  const routeDir = await tempRoot(t)
  let routeFile: UploadedFile | undefined
  const app = await server(t, { tempDir, maxFileSize: 4 }, app => {
    app.post('/upload', async request => request.saveUploads())
    app.post('/roomy', { config: { streamUpload: { maxFileSize: 100, hash: 'sha1', tempDir: routeDir } } }, async request => {
      for await (const f of request.uploads()) routeFile = f
      return 'ok'
    })
  })
  const parts = [{ name: 'f', filename: 'f', content: 'twelve bytes' }]
  t.equal((await inject(app, parts)).statusCode, 413)
  t.equal((await inject(app, parts, '/roomy')).statusCode, 200)
  t.equal(routeFile?.hash, contentHash('twelve bytes', 'sha1'))
  t.equal(path.dirname(path.dirname(routeFile!.path)), routeDir)
})

t.test('works alongside an @fastify/multipart the application registered itself', async t => {
  const tempDir = await tempRoot(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(multipart, { limits: { fileSize: 2 } })
  await app.register(streamUpload, { tempDir })
  app.post('/upload', async request => (await request.saveUploads()).files.map(f => f.size))
  app.post('/native', async request => {
    let n = 0
    for await (const part of request.parts()) if (part.type === 'file') n += (await part.toBuffer()).length
    return n
  })
  await app.ready()
  // nexure's own limits apply to uploads(), not the application's multipart defaults.
  t.same((await inject(app, [{ name: 'f', filename: 'f', content: 'more than two' }])).json(), [13])
  t.equal((await inject(app, [{ name: 'f', filename: 'f', content: 'abc' }], '/native')).statusCode, 413, '@fastify/multipart keeps its own behaviour')
})

t.test('a handler that never reads the body answers, and the connection stays usable', async t => {
  const tempDir = await tempRoot(t)
  const app = await server(t, { tempDir }, app => {
    app.post('/ignore', async () => 'ignored')
    app.get('/next', async () => 'next')
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const origin = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const body = multipartBody([{ name: 'f', filename: 'f', content: { size: 20_000 } }])
  const res = await httpRequest(`${origin}/ignore`, { method: 'POST', headers: { 'content-type': body.contentType }, body: body.toBuffer() })
  t.equal(await res.body.text(), 'ignored')
  const next = await httpRequest(`${origin}/next`)
  t.equal(await next.body.text(), 'next')
  t.same(await listTree(tempDir), [], 'nothing was written')
})

t.test('invalid plugin options are rejected at registration with FST_NEXURE_INVALID_OPTION', async t => {
  const file = path.join(await tempRoot(t), 'a-file')
  await writeFile(file, '')
  const cases: Array<[unknown, RegExp]> = [
    [{ hash: 'sha-nope' }, /option hash: .*crypto\.getHashes/],
    [{ hash: true }, /option hash/],
    [{ maxFileSize: -1 }, /option maxFileSize: expected a non-negative integer/],
    [{ maxFiles: 1.5 }, /option maxFiles/],
    [{ maxFields: '10' }, /option maxFields/],
    [{ maxFieldSize: NaN }, /option maxFieldSize/],
    [{ keepFiles: 'yes' }, /option keepFiles/],
    [{ transforms: ['not a function'] }, /option transforms\[0\]/],
    [{ transforms: () => null }, /option transforms: expected an array/],
    [{ tempDir: '/does/not/exist/nexure' }, /option tempDir: .*ENOENT/],
    [{ tempDir: file }, /option tempDir: .*not a directory/],
    [{ tempDir: '' }, /option tempDir/],
    [{ maxFileSzie: 10 }, /option maxFileSzie: unknown option/]
  ]
  for (const [options, message] of cases) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(streamUpload, options as StreamUploadOptions).ready() }, { code: 'FST_NEXURE_INVALID_OPTION', message }, JSON.stringify(options))
    await app.close()
  }
})

t.test('options are normalized into a copy: the caller\'s object is not touched', async t => {
  const options = Object.freeze({ maxFileSize: 3, transforms: Object.freeze([]) as unknown as [] })
  const app = await server(t, options, app => { app.post('/upload', async request => request.saveUploads()) })
  t.equal((await inject(app, [{ name: 'f', filename: 'f', content: 'abcd' }])).statusCode, 413)
  t.same(options, { maxFileSize: 3, transforms: [] })
  t.same(Object.keys(options), ['maxFileSize', 'transforms'])
})

t.test('an invalid route config.streamUpload fails at route registration, naming the route', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload)
  t.throws(() => app.post('/bad', { config: { streamUpload: { maxFiles: -2 } } }, async () => 'x'), {
    code: 'FST_NEXURE_INVALID_OPTION',
    message: /config\.streamUpload\.maxFiles of POST \/bad: expected a non-negative integer/
  })
  t.throws(() => app.post('/bad2', { config: { streamUpload: { hash: 'nope' } } }, async () => 'x'), { code: 'FST_NEXURE_INVALID_OPTION' })
  t.throws(() => app.post('/bad3', { config: { streamUpload: { tempDir: '/no/such/dir' } } }, async () => 'x'), { code: 'FST_NEXURE_INVALID_OPTION' })
})

t.test('the README\'s curl -F example works against a real server', async t => {
  // The same handler and the same curl arguments as the README's streamUpload section; only
  // the address (a free port instead of 3000) and the working directory differ.
  const workDir = await tempRoot(t)
  const photo = Buffer.concat([...patternChunks({ size: 48_213, seed: 11 })])
  await writeFile(path.join(workDir, 'photo.jpg'), photo)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload, { tempDir: workDir, maxFileSize: 1024 ** 3, hash: 'sha256' })
  app.post('/upload', async (request) => {
    const saved = []
    for await (const file of request.uploads()) saved.push({ name: file.filename, size: file.size, sha256: file.hash })
    return { files: saved, fields: request.uploadFields }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/upload`
  const { stdout } = await execFileAsync('curl', ['-sS', '-F', 'title=Holidays', '-F', 'photo=@photo.jpg;type=image/jpeg', url], { cwd: workDir })
  t.same(JSON.parse(stdout), {
    files: [{ name: 'photo.jpg', size: 48_213, sha256: createHash('sha256').update(photo).digest('hex') }],
    fields: { title: 'Holidays' }
  })
})

t.test('@fastify/multipart with attachFieldsToBody reads the body first: uploads() says so', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(multipart, { attachFieldsToBody: true })
  await app.register(streamUpload)
  app.post('/upload', async request => request.saveUploads())
  const res = await inject(app, [{ name: 'f', filename: 'f', content: 'abc' }])
  t.equal(res.statusCode, 500)
  t.equal(res.json().code, 'FST_NEXURE_BODY_CONSUMED')
  t.match(res.json().message, /saveUploads\(\).*another reader/)
})

t.test('streamUpload adds no onResponse or onRequestAbort hook: what follows an answer is armed per multipart request', async t => {
  const tempDir = await tempRoot(t)
  let stored = ''
  const app = await server(t, { tempDir }, app => {
    app.get('/ping', async () => 'pong')
    app.post('/upload', async request => {
      let files = 0
      for await (const file of request.uploads()) {
        stored = file.path
        files++
      }
      return { files }
    })
  })
  await app.ready()
  const routes = app.printRoutes({ includeHooks: true, commonPrefix: false })
  t.notMatch(routes, /finishUpload|abortUpload|\(onRequestAbort\)/, 'no route pays for them (the onResponse left is @fastify/multipart\'s own)')
  // Over a socket: the request's files still go once its answer has been sent.
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const body = multipartBody([{ name: 'a', filename: 'a.bin', content: Buffer.alloc(1000, 1) }])
  const res = await httpRequest(`${address}/upload`, { method: 'POST', headers: { 'content-type': body.contentType }, body: body.toBuffer() })
  t.equal(res.statusCode, 200)
  t.same(await res.body.json(), { files: 1 })
  t.not(stored, '', 'the file was stored during the request')
  t.ok(await eventually(async () => (await listTree(tempDir)).length === 0), 'nothing left in tempDir after the answer')
})
