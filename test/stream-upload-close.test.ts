import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { watch } from 'node:fs'
import type { AddressInfo, Socket } from 'node:net'
import { Readable } from 'node:stream'
import { streamBody, streamUpload } from '../lib/index.js'
import { requestHead, sendAfterAnswer } from './helpers/after-answer.js'
import { eventually, listTree, multipartBody, testTempDir, type HasTeardown } from './helpers/multipart.js'

// The upload side of test/stream-body-close.test.ts: after an answer that announces
// `connection: close` while the client is still sending, an upload sent behind the body on
// that connection is never parsed, so it never reaches a handler and never gets a temp dir.

interface Server {
  port: number
  tempDir: string
  /** Every request that reached Fastify, by URL. */
  reached: string[]
  /** Every request directory ever created under tempDir (watched as it happens). */
  created: Set<string>
  sockets: Socket[]
}

async function server (t: HasTeardown): Promise<Server> {
  const tempDir = await testTempDir(t, 'nexure-upload-close-')
  const created = new Set<string>()
  const watcher = watch(tempDir, (_event, name) => { if (name !== null) created.add(String(name)) })
  t.teardown(() => watcher.close())
  const app: FastifyInstance = Fastify()
  t.teardown(() => app.close())
  await app.register(streamBody)
  await app.register(streamUpload, { tempDir, maxFileSize: 100_000 })
  const reached: string[] = []
  app.addHook('onRequest', async request => { reached.push(request.url) })
  app.post('/upload', async request => {
    const saved = await request.saveUploads()
    return { files: saved.files.map(file => file.size) }
  })
  app.post('/ignore', async () => ({ ignored: true }))
  // The upload is read only once the streamed reply starts: onSend cannot know it will be.
  app.post('/lazy', { config: { streamUpload: { maxFileSize: 10_000_000 } } }, async (request, reply) => {
    async function * lines (): AsyncGenerator<string> {
      let bytes = 0
      for await (const file of request.uploads()) bytes += file.size
      yield JSON.stringify({ bytes })
    }
    return reply.send(Readable.from(lines()))
  })
  app.post('/count', async request => {
    let n = 0
    for await (const batch of request.batches()) n += batch.length
    return { n }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const sockets: Socket[] = []
  app.server.on('connection', (socket: Socket) => sockets.push(socket))
  return { port: (app.server.address() as AddressInfo).port, tempDir, reached, created, sockets }
}

/** A small upload that would create a request directory if it ever ran. */
function secondUpload (): Buffer {
  const body = multipartBody([{ name: 'f', filename: 'second.bin', content: 'charge me once' }])
  const head = requestHead('POST', '/upload', { 'content-type': body.contentType, 'content-length': body.length })
  return Buffer.concat([Buffer.from(head + '\r\n'), body.toBuffer()])
}

const bigUpload = multipartBody([{ name: 'f', filename: 'big.bin', content: { size: 3_000_000 } }])
const uploadHead = (path: string): string => requestHead('POST', path, { 'content-type': bigUpload.contentType, 'content-length': bigUpload.length })
const malformed = '[1,2,oops' + ',0'.repeat(1024 * 1024) + ']'

const cases = [
  { name: 'a file over maxFileSize (413)', head: uploadHead('/upload'), body: bigUpload.chunks, path: '/upload', status: 413, code: 'FST_NEXURE_FILE_TOO_LARGE', dirs: 1, holdsBack: true },
  { name: 'a streamed reply that reads the whole upload (200)', head: uploadHead('/lazy'), body: bigUpload.chunks, path: '/lazy', status: 200, code: undefined, dirs: 1, says: '"bytes":3000000' },
  { name: 'an upload the handler never reads (200)', head: uploadHead('/ignore'), body: bigUpload.chunks, path: '/ignore', status: 200, code: undefined, dirs: 0, holdsBack: true },
  {
    name: 'malformed JSON streamed to streamBody (400)',
    head: requestHead('POST', '/count', { 'content-type': 'application/json', 'content-length': malformed.length }),
    body: () => [malformed],
    path: '/count',
    status: 400,
    code: 'FST_NEXURE_INVALID_JSON',
    dirs: 0
  }
]

for (const c of cases) {
  t.test(`after ${c.name} with connection: close, an upload sent on that connection never runs`, async t => {
    const { port, tempDir, reached, created, sockets } = await server(t)
    const pieces = [...c.body()]
    // Where the answer does not wait for the whole upload, the last half of it is sent only after
    // the answer: the upload pipeline reads as fast as the socket delivers, and on a fast machine
    // it could otherwise have received it all (then keeping the connection is right).
    const held = c.holdsBack === true ? pieces.splice(Math.ceil(pieces.length / 2)) : []
    t.ok(c.holdsBack !== true || held.length > 0, 'part of the body waits for the answer')
    const result = await sendAfterAnswer(port, { head: c.head, body: pieces, rest: held }, secondUpload())
    t.equal(result.first.status, c.status, 'the first answer arrives whole')
    if (c.code !== undefined) t.equal(JSON.parse(result.first.body).code, c.code)
    if ('says' in c) t.match(result.first.body, c.says, 'the handler read the whole upload while answering')
    t.equal(result.first.headers.connection, 'close')
    t.ok(result.serverEnded, 'the server ends the connection after its answer')
    t.equal(result.error, null, 'no reset reached the client')
    t.equal(result.after, '', 'nothing is written after the first answer')
    t.same(reached, [c.path], 'the upload never reached Fastify')
    t.equal(created.size, c.dirs, 'no request directory was created for it')
    t.ok(await eventually(async () => sockets[0]?.destroyed === true, 1500), 'the server closes once the client has finished')
    t.equal(sockets[0]?.bytesRead, result.bytesWritten, 'everything the client sent was read (and discarded)')
    t.ok(await eventually(async () => (await listTree(tempDir)).length === 0), 'nothing is left in tempDir')
  })
}
