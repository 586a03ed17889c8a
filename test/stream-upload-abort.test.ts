import t from 'tap'
import Fastify from 'fastify'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { streamUpload } from '../lib/index.js'
import { prng } from './helpers/chunking.js'
import { abortedUpload, eventually, listTree, multipartBody, openFds, testTempDir, type HasTeardown } from './helpers/multipart.js'

const tempRoot = (t: HasTeardown): Promise<string> => testTempDir(t, 'nexure-upload-abort-')

t.test('1,000 uploads aborted at random points leave no file, no directory and no open descriptor', async t => {
  const seed = Number(process.env.NEXURE_ABORT_SEED ?? 20261128)
  t.comment(`seed ${seed} (replay with NEXURE_ABORT_SEED=${seed})`)
  const next = prng(seed)
  const tempDir = await tempRoot(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload, { tempDir, hash: 'sha256' })
  let started = 0
  let settled = 0
  // Three handler styles: iterate and work between files, save everything, and start late.
  app.post('/iterate', async request => {
    try {
      started++
      for await (const file of request.uploads()) await sleep(file.size % 3)
    } finally { settled++ }
    return 'done'
  })
  app.post('/save', async request => {
    started++
    try { return await request.saveUploads() } finally { settled++ }
  })
  app.post('/late', async request => {
    started++
    await sleep(5)
    try { return await request.saveUploads() } finally { settled++ }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as net.AddressInfo).port

  const body = multipartBody([
    { name: 'title', value: 'report' },
    { name: 'a', filename: 'a.bin', content: { size: 150_000, seed: 1 } },
    { name: 'b', filename: 'b.bin', content: { size: 60_000, seed: 2 } },
    { name: 'c', filename: 'c.bin', content: { size: 5, seed: 3 } }
  ]).toBuffer()
  const boundary = body.subarray(2, body.indexOf('\r\n')).toString()
  const routes = ['/iterate', '/save', '/late']
  const headFor = (route: string): string =>
    `POST ${route} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: multipart/form-data; boundary=${boundary}\r\ncontent-length: ${body.length}\r\n\r\n`

  // Warm up (lazy imports, first mkdtemp) before the descriptor baseline is taken.
  await abortedUpload(port, headFor('/save'), body, body.length - 1, 0)
  t.ok(await eventually(async () => (await listTree(tempDir)).length === 0))
  const fdsBefore = await openFds()

  const total = 1000
  const concurrency = 16
  let sent = 0
  const startedAt = Date.now()
  async function worker (): Promise<void> {
    while (sent < total) {
      sent++
      const route = routes[Math.floor(next() * routes.length)]!
      const cut = Math.floor(next() * body.length) // never the whole body
      const pauseMs = next() < 0.5 ? 0 : Math.floor(next() * 8)
      await abortedUpload(port, headFor(route), body, cut, pauseMs)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  t.comment(`${total} aborted uploads in ${Date.now() - startedAt} ms`)

  t.ok(await eventually(async () => (await listTree(tempDir)).length === 0, 10_000), 'tempDir is empty')
  t.same(await listTree(tempDir), [])
  t.ok(await eventually(async () => (await openFds()) <= fdsBefore, 10_000), 'descriptors are back to the baseline')
  t.ok(await openFds() <= fdsBefore, `open fds ${await openFds()} <= ${fdsBefore}`)
  t.ok(await eventually(async () => settled === started, 10_000), 'every handler that started has finished (none hangs)')
  t.equal(settled, started)
  t.comment(`${started} of ${total + 1} requests reached a handler`)
})

t.test('a client that aborts after the body, while the handler still works, gets its files removed', async t => {
  const tempDir = await tempRoot(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload, { tempDir })
  let received: string[] = []
  let release!: () => void
  const handlerBusy = new Promise<void>(resolve => { release = resolve })
  let handlerSawAbort = false
  app.post('/slow', async request => {
    const saved = await request.saveUploads()
    received = saved.files.map(f => f.path)
    await handlerBusy
    handlerSawAbort = request.raw.destroyed
    return 'late'
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as net.AddressInfo).port
  const body = multipartBody([{ name: 'f', filename: 'f.bin', content: { size: 100_000 } }])
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  socket.write(`POST /slow HTTP/1.1\r\nhost: x\r\ncontent-type: ${body.contentType}\r\ncontent-length: ${body.length}\r\n\r\n`)
  socket.write(body.toBuffer())
  t.ok(await eventually(async () => received.length === 1), 'the file reached the handler')
  t.same((await listTree(tempDir)).length, 2, 'directory and file exist while the request lives')
  socket.destroy()
  t.ok(await eventually(async () => (await listTree(tempDir)).length === 0), 'removed on abort, without waiting for the handler')
  release()
  t.ok(await eventually(async () => handlerSawAbort))
})

t.test('a handler that calls uploads() only after the client left gets FST_NEXURE_ABORTED, not a hang', async t => {
  const tempDir = await tempRoot(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload, { tempDir })
  let outcome = 'pending'
  app.post('/late', async request => {
    // The client is long gone when the handler starts reading (a paused socket only notices
    // the close once something reads it).
    await sleep(150)
    try {
      await request.saveUploads()
      outcome = 'resolved'
    } catch (err) {
      outcome = (err as { code: string }).code
    }
    return 'x'
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as net.AddressInfo).port
  const body = multipartBody([{ name: 'f', filename: 'f.bin', content: { size: 100_000 } }]).toBuffer()
  const boundary = body.subarray(2, body.indexOf('\r\n')).toString()
  await abortedUpload(port, `POST /late HTTP/1.1\r\nhost: x\r\ncontent-type: multipart/form-data; boundary=${boundary}\r\ncontent-length: ${body.length}\r\n\r\n`, body, 50_000, 0)
  t.ok(await eventually(async () => outcome !== 'pending', 5000), 'the handler finished')
  t.equal(outcome, 'FST_NEXURE_ABORTED')
  t.same(await listTree(tempDir), [])
})
