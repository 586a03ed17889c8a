import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance, type RawServerBase } from 'fastify'
import { execFile, execFileSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { promisify } from 'node:util'
import { Client } from 'undici'
import { streamBody, streamUpload } from '../lib/index.js'
import { HTTP2_SETUPS, testTls } from './helpers/http2.js'
import { listTree, multipartBody, testTempDir } from './helpers/multipart.js'

// Expect: 100-continue: nexure decides before the body is sent. A body it refuses from its
// headers alone is answered without `100 Continue`, so the client never sends it; every other
// body gets `100 Continue` when it is first read, on nexure's routes and on any other route.

const run = promisify(execFile)
const MIB = 1024 * 1024

function hasCurl (): boolean {
  try {
    execFileSync('curl', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
const curlSkip = hasCurl() ? false : 'curl is not installed'

interface CurlAnswer { status: number, body: string, uploaded: number, continued: boolean }

/**
 * POSTs a file with curl over HTTP/1.1: curl sends `Expect: 100-continue` for bodies over
 * 1 MB by itself (`expect` forces it for smaller ones) and reports how much it uploaded.
 */
async function curlPost (url: string, file: string, contentType: string, extra: string[] = []): Promise<CurlAnswer> {
  const { stdout, stderr } = await run('curl', [
    '-sv', '--http1.1', '-H', `content-type: ${contentType}`, ...extra,
    '--data-binary', `@${file}`, url, '-w', '\n%{http_code} %{size_upload}'
  ], { encoding: 'utf8', maxBuffer: 16 * MIB })
  const lines = stdout.split('\n')
  const [status, uploaded] = lines.pop()!.split(' ').map(Number)
  return { status: status!, uploaded: uploaded!, body: lines.join('\n'), continued: /^< HTTP\/1\.1 100 Continue/m.test(stderr) }
}

async function jsonFile (dir: string, name: string, items: number): Promise<string> {
  const file = path.join(dir, name)
  await writeFile(file, JSON.stringify(Array.from({ length: items }, (_, i) => ({ i, note: 'x'.repeat(20) }))))
  return file
}

function countRoute (app: FastifyInstance<RawServerBase, any, any>, url: string, options = {}): void {
  app.post(url, options, async request => {
    let count = 0
    for await (const batch of request.batches()) count += batch.length
    return { count }
  })
}

t.test('curl, streamBody: refusals from the headers go out before the body; the rest gets 100 Continue', { skip: curlSkip }, async t => {
  const dir = await testTempDir(t, 'nexure-expect-')
  const big = await jsonFile(dir, 'big.json', 80_000) // ~3 MB: curl asks to continue
  const small = await jsonFile(dir, 'small.json', 20_000) // ~700 KB
  const app = Fastify()
  t.teardown(() => app.close())
  // Two registrations with their own limits, and a scope without nexure.
  await app.register(async scope => {
    await scope.register(streamBody, { bodyLimit: MIB })
    countRoute(scope, '/count')
    countRoute(scope, '/roomy', { config: { streamBody: { bodyLimit: 8 * MIB } } })
    countRoute(scope, '/tight', { bodyLimit: 256 * 1024 })
    scope.post('/raw-only', { config: { streamBody: { bodyLimit: 8 * MIB } } }, async request => {
      for await (const batch of request.batches()) return batch.length
      return 0
    })
  })
  await app.register(async scope => {
    await scope.register(streamBody, { bodyLimit: 8 * MIB })
    countRoute(scope, '/other-registration')
  })
  app.post('/plain', { bodyLimit: 8 * MIB }, async request => ({ count: (request.body as unknown[]).length }))
  const url = await app.listen({ port: 0, host: '127.0.0.1' })

  const refusals: Array<[string, string, string, number, string, string[]?]> = [
    ['over the plugin bodyLimit', '/count', 'application/json', 413, 'FST_NEXURE_BODY_TOO_LARGE'],
    ['over the route bodyLimit', '/tight', 'application/json', 413, 'FST_NEXURE_BODY_TOO_LARGE'],
    ['a charset nexure cannot read', '/roomy', 'application/json; charset=latin1', 415, 'FST_NEXURE_UNSUPPORTED_CHARSET'],
    ['a content-encoding nexure cannot decode', '/roomy', 'application/json', 415, 'FST_NEXURE_UNSUPPORTED_ENCODING', ['-H', 'content-encoding: zstd']],
    ['a content type batches() does not take', '/raw-only', 'application/octet-stream', 415, 'FST_NEXURE_UNSUPPORTED_MEDIA_TYPE']
  ]
  for (const [what, route, type, status, code, extra] of refusals) {
    const file = route === '/tight' ? small : big
    const answer = await curlPost(url + route, file, type, [...(extra ?? []), ...(route === '/tight' ? ['-H', 'expect: 100-continue'] : [])])
    t.equal(answer.status, status, what)
    t.equal(JSON.parse(answer.body).code, code)
    t.notOk(answer.continued, `${what}: no 100 Continue`)
    t.equal(answer.uploaded, 0, `${what}: the body was never sent`)
  }

  const accepted: Array<[string, string, number]> = [
    ['under the route\'s streamBody bodyLimit', '/roomy', 80_000],
    ['another registration, its own bodyLimit', '/other-registration', 80_000],
    ['a route without nexure (Fastify\'s parser)', '/plain', 80_000]
  ]
  for (const [what, route, count] of accepted) {
    const answer = await curlPost(url + route, big, 'application/json')
    t.equal(answer.status, 200, `${what}: ${answer.body.slice(0, 200)}`)
    t.same(JSON.parse(answer.body), { count })
    t.ok(answer.continued, `${what}: 100 Continue went out`)
    t.ok(answer.uploaded > 2 * MIB, `${what}: the body was sent (${answer.uploaded} bytes)`)
  }
})

t.test('curl, streamUpload: a refused upload is never sent; an accepted one gets 100 Continue', { skip: curlSkip }, async t => {
  const dir = await testTempDir(t, 'nexure-expect-upload-')
  const tempDir = await testTempDir(t, 'nexure-expect-spill-')
  const form = multipartBody([{ name: 'note', value: 'hi' }, { name: 'file', filename: 'big.bin', content: { size: 3 * MIB } }])
  const formFile = path.join(dir, 'form.bin')
  await writeFile(formFile, form.toBuffer())
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamBody)
  await app.register(streamUpload, { tempDir })
  app.post('/upload', async request => {
    const files = []
    for await (const file of request.uploads()) files.push({ name: file.filename, size: file.size })
    return { files, fields: request.uploadFields }
  })
  app.post('/members-only', {
    preHandler: async (request, reply) => reply.code(401).send({ error: 'log in first' })
  }, async request => {
    for await (const file of request.uploads()) return file.size
    return 0
  })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })

  const ok = await curlPost(url + '/upload', formFile, form.contentType)
  t.equal(ok.status, 200, ok.body)
  t.same(JSON.parse(ok.body), { files: [{ name: 'big.bin', size: 3 * MIB }], fields: { note: 'hi' } })
  t.ok(ok.continued, '100 Continue went out')

  const big = await jsonFile(dir, 'big.json', 80_000)
  const wrongType = await curlPost(url + '/upload', big, 'application/json')
  t.equal(wrongType.status, 415)
  t.equal(JSON.parse(wrongType.body).code, 'FST_NEXURE_UNSUPPORTED_MEDIA_TYPE')
  t.notOk(wrongType.continued)
  t.equal(wrongType.uploaded, 0, 'uploads() on a JSON body: never sent')

  const denied = await curlPost(url + '/members-only', formFile, form.contentType)
  t.equal(denied.status, 401)
  t.notOk(denied.continued)
  t.equal(denied.uploaded, 0, 'a hook that answers first: the upload is never sent')
  t.same(await listTree(tempDir), [], 'nothing spilled')
})

/**
 * undici over HTTP/2 (TLS) with `expectContinue`; counts the body bytes undici pulled from the
 * body stream. A Readable buffers its first chunk as soon as undici attaches to it, so every body
 * here starts with a one-byte chunk: `pulled` is 1 when undici waited for a 100 that never came.
 */
async function undiciPost (t: Test, url: string, path: string, headers: Record<string, string>, chunks: Buffer[]): Promise<{ status: number, body: string, pulled: number }> {
  const client = new Client(url, { allowH2: true, connect: { ca: testTls.cert } })
  t.teardown(() => client.close())
  let pulled = 0
  const body = Readable.from((function * () {
    for (const chunk of chunks) {
      pulled += chunk.length
      yield chunk
    }
  })(), { objectMode: false })
  const length = chunks.reduce((sum, chunk) => sum + chunk.length, 0)
  const res = await client.request({ method: 'POST', path, headers: { ...headers, 'content-length': String(length) }, body, expectContinue: true })
  return { status: res.statusCode, body: await res.body.text(), pulled }
}

t.test('undici over HTTP/2 with expectContinue, streamBody and streamUpload', async t => {
  const tempDir = await testTempDir(t, 'nexure-expect-h2-')
  const app = Fastify(HTTP2_SETUPS['HTTP/2 TLS'])
  t.teardown(() => app.close())
  await app.register(streamBody, { bodyLimit: MIB })
  await app.register(streamUpload, { tempDir })
  countRoute(app, '/count')
  app.post('/upload', { bodyLimit: 8 * MIB }, async request => {
    let size = 0
    for await (const file of request.uploads()) size += file.size
    return { size }
  })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const json = (items: number): Buffer[] => {
    const chunk = Buffer.from(JSON.stringify(Array.from({ length: 1000 }, (_, i) => ({ i, note: 'x'.repeat(20) }))).slice(1, -1))
    return [Buffer.from('['), ...Array.from({ length: items / 1000 }, (_, i) => i === 0 ? chunk : Buffer.concat([Buffer.from(','), chunk])), Buffer.from(']')]
  }

  const refused = await undiciPost(t, url, '/count', { 'content-type': 'application/json' }, json(80_000))
  t.equal(refused.status, 413)
  t.equal(JSON.parse(refused.body).code, 'FST_NEXURE_BODY_TOO_LARGE')
  t.equal(refused.pulled, 1, 'the body was never sent')

  const charset = await undiciPost(t, url, '/count', { 'content-type': 'application/json; charset=utf-16' }, json(1000))
  t.equal(charset.status, 415)
  t.equal(charset.pulled, 1)

  const accepted = await undiciPost(t, url, '/count', { 'content-type': 'application/json' }, json(20_000))
  t.equal(accepted.status, 200, accepted.body)
  t.same(JSON.parse(accepted.body), { count: 20_000 })

  const form = multipartBody([{ name: 'file', filename: 'a.bin', content: { size: 2 * MIB } }])
  const formChunks = [...form.chunks()]
  const upload = await undiciPost(t, url, '/upload', { 'content-type': form.contentType }, [formChunks[0]!.subarray(0, 1), formChunks[0]!.subarray(1), ...formChunks.slice(1)])
  t.equal(upload.status, 200, upload.body)
  t.same(JSON.parse(upload.body), { size: 2 * MIB })

  const wrongType = await undiciPost(t, url, '/upload', { 'content-type': 'application/json' }, json(80_000))
  t.equal(wrongType.status, 415)
  t.equal(JSON.parse(wrongType.body).code, 'FST_NEXURE_UNSUPPORTED_MEDIA_TYPE')
  t.equal(wrongType.pulled, 1, 'uploads() on a JSON body: never sent')
})

t.test('an application that listens for checkContinue itself keeps its own decision', { skip: curlSkip }, async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  let asked = 0
  app.server.on('checkContinue', (request, response) => {
    asked++
    response.writeHead(417).end()
  })
  await app.register(streamBody)
  countRoute(app, '/count')
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  t.equal(app.server.listenerCount('checkContinue'), 1, 'nexure added no listener')
  const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'expect: 100-continue', '-H', 'content-type: application/json', '--data-binary', '[1]', url + '/count'], { encoding: 'utf8' })
  t.equal(stdout, '417')
  t.equal(asked, 1)
})
