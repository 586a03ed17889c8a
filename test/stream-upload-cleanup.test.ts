import t from 'tap'
import Fastify from 'fastify'
import { execFileSync } from 'node:child_process'
import { mkdir, readFile, rm } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { Readable } from 'node:stream'
import { request } from 'undici'
import { BufferPool, streamUpload, type UploadedFile } from '../lib/index.js'
import { contentHash, eventually, listTree, multipartBody, openFds, testTempDir, type HasTeardown } from './helpers/multipart.js'

const tempRoot = (t: HasTeardown): Promise<string> => testTempDir(t, 'nexure-upload-cleanup-')

async function listen (app: ReturnType<typeof Fastify>): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}`
}

t.test('the request directory exists while the handler runs and is gone after the response', async t => {
  const tempDir = await tempRoot(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload, { tempDir })
  let during: string[] = []
  app.post('/upload', async req => {
    await req.saveUploads()
    during = await listTree(tempDir)
    return 'ok'
  })
  const body = multipartBody([{ name: 'a', filename: 'a', content: 'x' }, { name: 'b', filename: 'b', content: 'y' }])
  const res = await app.inject({ method: 'POST', url: '/upload', headers: { 'content-type': body.contentType }, payload: body.toBuffer() })
  t.equal(res.statusCode, 200)
  t.equal(during.length, 3, 'one directory, two files')
  t.match(during[0], /^nexure-[A-Za-z0-9]{6}$/)
  t.ok(await eventually(async () => (await listTree(tempDir)).length === 0))
})

t.test('no directory is created for a request without files', async t => {
  const tempDir = await tempRoot(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload, { tempDir })
  let during: string[] = ['not run']
  app.post('/upload', async req => {
    await req.saveUploads()
    during = await listTree(tempDir)
    return req.uploadFields
  })
  const body = multipartBody([{ name: 'only', value: 'fields' }])
  const res = await app.inject({ method: 'POST', url: '/upload', headers: { 'content-type': body.contentType }, payload: body.toBuffer() })
  t.same(res.json(), { only: 'fields' })
  t.same(during, [])
})

t.test('keepFiles: received files outlive the response and are removed as the README says', async t => {
  const tempDir = await tempRoot(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload, { tempDir, keepFiles: true })
  let kept: UploadedFile[] = []
  app.post('/upload', async req => {
    kept = (await req.saveUploads()).files
    return 'ok'
  })
  const body = multipartBody([{ name: 'a', filename: 'a.txt', content: 'keep me' }])
  await app.inject({ method: 'POST', url: '/upload', headers: { 'content-type': body.contentType }, payload: body.toBuffer() })
  await app.inject({ method: 'GET', url: '/nothing' })
  t.equal(await readFile(kept[0]!.path, 'utf8'), 'keep me', 'still there after the response')
  // The README's recipe: the directory of a kept file belongs to the application.
  await rm(path.dirname(kept[0]!.path), { recursive: true, force: true })
  t.same(await listTree(tempDir), [])
})

t.test('a write failure (file size limit of the process: EFBIG) is a 500 and removes everything written', async t => {
  const tempDir = await tempRoot(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload, { tempDir })
  let firstFile = ''
  app.post('/upload', async req => {
    for await (const file of req.uploads()) firstFile = file.path
    return 'unreachable'
  })
  const origin = await listen(app)
  const body = multipartBody([
    { name: 'a', filename: 'small.txt', content: 'fits' },
    { name: 'b', filename: 'large.bin', content: { size: 3_000_000 } }
  ])
  await request(`${origin}/nothing`).then(res => res.body.dump()) // warm the connection pool up
  const fdsBefore = await openFds()
  // A real failing disk: RLIMIT_FSIZE on this process makes write(2) fail with EFBIG past 1 MiB.
  // Node ignores SIGXFSZ, but tap's signal-exit hook re-raises it unless someone else listens.
  // Only this test process is affected, and only until the finally.
  const ignoreSignal = (): void => {}
  process.on('SIGXFSZ', ignoreSignal)
  t.teardown(() => { process.off('SIGXFSZ', ignoreSignal) })
  execFileSync('prlimit', ['--pid', String(process.pid), '--fsize=1048576:unlimited'])
  let res
  try {
    res = await request(`${origin}/upload`, { method: 'POST', headers: { 'content-type': body.contentType }, body: body.toBuffer() })
  } finally {
    execFileSync('prlimit', ['--pid', String(process.pid), '--fsize=unlimited:unlimited'])
  }
  t.equal(res.statusCode, 500)
  const json = await res.body.json() as { code: string, message: string }
  t.equal(json.code, 'FST_NEXURE_UPLOAD_WRITE_FAILED')
  t.equal(json.message, 'Could not store the upload: writing file 2 "large.bin" failed (EFBIG)')
  t.not(firstFile, '', 'the first file had been stored')
  t.ok(await eventually(async () => (await listTree(tempDir)).length === 0), 'the completed first file and the directory are removed too')
  t.ok(await eventually(async () => (await openFds()) <= fdsBefore), 'no descriptor left open')
})

t.test('a tempDir that disappeared after registration is a 500 FST_NEXURE_UPLOAD_WRITE_FAILED', async t => {
  const tempDir = await tempRoot(t)
  const vanishing = path.join(tempDir, 'vanishing')
  await mkdir(vanishing)
  const app2 = Fastify()
  t.teardown(() => app2.close())
  await app2.register(streamUpload, { tempDir: vanishing })
  app2.post('/upload', async req => req.saveUploads())
  await rm(vanishing, { recursive: true })
  const body = multipartBody([{ name: 'a', filename: 'a', content: 'x' }])
  const res = await app2.inject({ method: 'POST', url: '/upload', headers: { 'content-type': body.contentType }, payload: body.toBuffer() })
  t.equal(res.statusCode, 500)
  t.equal(res.json().code, 'FST_NEXURE_UPLOAD_WRITE_FAILED')
  t.match(res.json().message, /cannot create the request's upload directory \(ENOENT\)/)
  t.notMatch(res.json().message, tempDir, 'server paths are not sent to the client')
})

t.test('small chunks are gathered in pooled slabs; every slab goes back to the pool', async t => {
  const tempDir = await tempRoot(t)
  const pool = new BufferPool({ slabSize: 64 * 1024, maxPooled: 4 })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload, { tempDir, pool, hash: 'sha256' })
  const stored: Array<{ size: number, hash: string | null, disk: string }> = []
  app.post('/upload', async req => {
    for await (const file of req.uploads()) {
      stored.push({ size: file.size, hash: file.hash, disk: contentHash(await readFile(file.path)) })
    }
    return 'ok'
  })
  const origin = await listen(app)
  const content = { size: 1_000_000, chunkSize: 700, seed: 9 }
  const body = multipartBody([{ name: 'a', filename: 'a', content }, { name: 'b', filename: 'b', content: { size: 300_000, chunkSize: 256 * 1024 } }])
  // 700-byte writes with a pause now and then, so busboy really sees small chunks.
  async function * trickle (): AsyncGenerator<Buffer> {
    let n = 0
    for (const chunk of body.chunks()) {
      yield chunk
      if (++n % 50 === 0) await new Promise(resolve => setImmediate(resolve))
    }
  }
  const res = await request(`${origin}/upload`, { method: 'POST', headers: { 'content-type': body.contentType, 'content-length': String(body.length) }, body: Readable.from(trickle()) })
  t.equal(await res.body.text(), 'ok')
  t.same(stored, [
    { size: 1_000_000, hash: contentHash(content), disk: contentHash(content) },
    { size: 300_000, hash: contentHash({ size: 300_000, chunkSize: 256 * 1024 }), disk: contentHash({ size: 300_000 }) }
  ], 'the bytes on disk are exactly the bytes sent, whatever the chunking')
  t.ok(pool.stats.hits + pool.stats.misses > 0, `the pool was used: ${JSON.stringify(pool.stats)}`)
  t.equal(pool.stats.inUse, 0, 'no slab is still lent out')
  t.equal(pool.stats.refused, 0)
})

t.test('pool: false writes chunks as they come, with the same bytes on disk', async t => {
  const tempDir = await tempRoot(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload, { tempDir, pool: false })
  app.post('/upload', async req => (await req.saveUploads()).files.map(f => f.size))
  const body = multipartBody([{ name: 'a', filename: 'a', content: { size: 200_000, chunkSize: 100 } }])
  const res = await app.inject({ method: 'POST', url: '/upload', headers: { 'content-type': body.contentType }, payload: body.toBuffer() })
  t.same(res.json(), [200_000])
})

t.test('an over-limit file on a pooled writer releases its slab', async t => {
  const tempDir = await tempRoot(t)
  const pool = new BufferPool({ slabSize: 64 * 1024, maxPooled: 4 })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload, { tempDir, pool, maxFileSize: 50_000 })
  app.post('/upload', async req => req.saveUploads())
  const body = multipartBody([{ name: 'a', filename: 'a', content: { size: 90_000, chunkSize: 1000 } }])
  const res = await app.inject({ method: 'POST', url: '/upload', headers: { 'content-type': body.contentType }, payload: body.toBuffer() })
  t.equal(res.statusCode, 413)
  t.ok(await eventually(async () => pool.stats.inUse === 0), JSON.stringify(pool.stats))
  t.ok(await eventually(async () => (await listTree(tempDir)).length === 0))
})
