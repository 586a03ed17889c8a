import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { statfs } from 'node:fs/promises'
import net from 'node:net'
import { Writable } from 'node:stream'
import { streamUpload, type StorageEngine, type StreamUploadOptions, type UploadStats } from '../lib/index.js'
import { contentHash, eventually, listTree, multipartBody, type Part, testTempDir, type HasTeardown } from './helpers/multipart.js'

// The storage-engine contract, proven by a second engine that is not disk or S3: an in-memory
// store of a few lines, as a user would write for GCS or a database. And the limits that hold
// for every storage: maxTotalSize, fileFilter, minFreeSpace (disk), request.uploadStats.

interface MemoryObject { id: string }

function memoryStorage () {
  const objects = new Map<string, Buffer>()
  const writing = new Set<string>()
  let opened = 0
  const engine: StorageEngine<MemoryObject> = {
    durable: true,
    async open (file) {
      opened++
      const id = `${file.index}-${file.fieldname}`
      const chunks: Buffer[] = []
      writing.add(id)
      return {
        writable: new Writable({ write (chunk: Buffer, _encoding, callback) { chunks.push(chunk); callback() } }),
        async commit () {
          writing.delete(id)
          objects.set(id, Buffer.concat(chunks))
          return { id }
        },
        async abort () { writing.delete(id) }
      }
    },
    async remove (files) {
      for (const file of files) objects.delete(file.id)
    }
  }
  return { engine, objects, writing, opens: () => opened }
}

async function app (t: HasTeardown, options: StreamUploadOptions): Promise<FastifyInstance> {
  const server = Fastify()
  t.teardown(() => server.close())
  await server.register(streamUpload, options)
  server.post('/upload', async request => {
    const saved = await request.saveUploads<Record<string, unknown>>()
    return { files: saved.files, stats: request.uploadStats }
  })
  return server
}

function inject (server: FastifyInstance, parts: Part[]) {
  const body = multipartBody(parts)
  return server.inject({ method: 'POST', url: '/upload', headers: { 'content-type': body.contentType }, payload: body.toBuffer() })
}

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
const isPng = (head: Buffer): boolean => head.subarray(0, 8).equals(PNG)

t.test('a storage engine of a few lines receives every file, committed with what it returns', async t => {
  const memory = memoryStorage()
  const server = await app(t, { storage: memory.engine, hash: 'sha256' })
  const big = { size: 300_000, seed: 4 }
  const res = await inject(server, [{ name: 'a', filename: 'a.txt', content: 'hello' }, { name: 'b', filename: 'b.bin', content: big }])
  t.equal(res.statusCode, 200)
  t.match(res.json().files, [{ id: '1-a', fieldname: 'a', filename: 'a.txt', size: 5, hash: contentHash('hello') }, { id: '2-b', size: big.size, hash: contentHash(big) }])
  t.same(res.json().stats, { bytesReceived: res.json().stats.bytesReceived, files: 2, currentFile: null })
  t.equal(memory.objects.get('1-a')?.toString(), 'hello')
  t.equal(contentHash(memory.objects.get('2-b')!), contentHash(big))
  t.same(memory.writing.size, 0)
})

t.test('maxTotalSize bounds all files of a request together: 413, and the files before go too', async t => {
  const memory = memoryStorage()
  const server = await app(t, { storage: memory.engine, maxTotalSize: 500 })
  t.equal((await inject(server, [{ name: 'a', filename: 'a', content: { size: 250 } }, { name: 'b', filename: 'b', content: { size: 250 } }])).statusCode, 200, 'exactly the limit passes')
  memory.objects.clear()
  const res = await inject(server, [{ name: 'a', filename: 'a', content: { size: 300 } }, { name: 'b', filename: 'b.bin', content: { size: 300 } }])
  t.equal(res.statusCode, 413)
  t.equal(res.json().code, 'FST_NEXURE_TOTAL_TOO_LARGE')
  t.equal(res.json().message, 'The files of this request exceed maxTotalSize: file 2 "b.bin" crossed the limit of 500 bytes')
  t.same([...memory.objects.keys()], [], 'the committed first file was removed')
  t.same(memory.writing.size, 0, 'the second file was aborted')

  const tempDir = await testTempDir(t, 'nexure-upload-total-')
  const disk = await app(t, { tempDir, maxTotalSize: 500 })
  t.equal((await inject(disk, [{ name: 'a', filename: 'a', content: { size: 300 } }, { name: 'b', filename: 'b', content: { size: 300 } }])).statusCode, 413)
  t.ok(await eventually(async () => (await listTree(tempDir)).length === 0), 'nothing left on disk')
})

t.test('fileFilter sees the first 4 KiB before anything is stored and refuses by magic bytes with 415', async t => {
  const memory = memoryStorage()
  const heads: number[] = []
  const server = await app(t, {
    storage: memory.engine,
    hash: 'sha256',
    fileFilter: (file, head) => {
      heads.push(head.length)
      return file.fieldname !== 'photo' || isPng(head)
    }
  })
  // A real PNG signature followed by 100 KB, sent in odd chunks: the head must not be lost.
  const png = Buffer.concat([PNG, Buffer.alloc(100_000, 7)])
  const ok = await inject(server, [{ name: 'photo', filename: 'cat.png', contentType: 'image/png', content: png }, { name: 'note', filename: 'n.txt', content: 'hi' }])
  t.equal(ok.statusCode, 200)
  t.same(heads, [4096, 2], 'up to 4 KiB, less for a short file')
  t.equal(ok.json().files[0].hash, contentHash(png), 'the file is stored whole, head included')
  t.equal(contentHash(memory.objects.get('1-photo')!), contentHash(png))

  memory.objects.clear()
  const opensBefore = memory.opens()
  const exe = Buffer.concat([Buffer.from('MZ\x90\x00\x03\x00\x00\x00', 'latin1'), Buffer.alloc(10_000)])
  const refused = await inject(server, [{ name: 'note', filename: 'n.txt', content: 'first' }, { name: 'photo', filename: 'cat.png', contentType: 'image/png', content: exe }])
  t.equal(refused.statusCode, 415)
  t.equal(refused.json().code, 'FST_NEXURE_FILE_TYPE_REFUSED')
  t.equal(refused.json().message, 'File 2 "cat.png" (field "photo", declared image/png) was refused by fileFilter: its first bytes are 4d 5a 90 00 03 00 00 00 …')
  t.equal(memory.opens(), opensBefore + 1, 'the refused file was never opened in the storage')
  t.same([...memory.objects.keys()], [], 'and the file before it was removed')

  const tempDir = await testTempDir(t, 'nexure-upload-filter-')
  const disk = await app(t, { tempDir, fileFilter: async (_file, head) => isPng(head) })
  t.equal((await inject(disk, [{ name: 'photo', filename: 'x.png', content: exe }])).statusCode, 415)
  t.same(await listTree(tempDir), [], 'no directory was even created')
})

t.test('a fileFilter that throws fails the request with its own error', async t => {
  const memory = memoryStorage()
  const server = await app(t, { storage: memory.engine, fileFilter: () => { throw Object.assign(new Error('virus scanner offline'), { statusCode: 503 }) } })
  const res = await inject(server, [{ name: 'f', filename: 'f', content: 'x' }])
  t.equal(res.statusCode, 503)
  t.equal(res.json().message, 'virus scanner offline')
  t.equal(memory.opens(), 0)
})

t.test('minFreeSpace: 507 when the temp dir\'s file system has less free space, from fs.statfs', async t => {
  const tempDir = await testTempDir(t, 'nexure-upload-space-')
  const fs = await statfs(tempDir)
  const free = fs.bavail * fs.bsize
  const full = await app(t, { tempDir, minFreeSpace: free + 1024 ** 4 })
  const res = await inject(full, [{ name: 'f', filename: 'f.bin', content: 'x' }])
  t.equal(res.statusCode, 507)
  t.equal(res.json().code, 'FST_NEXURE_INSUFFICIENT_STORAGE')
  t.match(res.json().message, new RegExp(`^Not enough free space to store file 1 "f\\.bin": "${tempDir}" has \\d+ bytes free, minFreeSpace is ${free + 1024 ** 4}$`))
  t.same(await listTree(tempDir), [])
  const roomy = await app(t, { tempDir, minFreeSpace: 1024 })
  t.equal((await inject(roomy, [{ name: 'f', filename: 'f.bin', content: 'x' }])).statusCode, 200)
  await t.rejects(app(t, { storage: memoryStorage().engine, minFreeSpace: 1 }), { code: 'FST_NEXURE_INVALID_OPTION', message: /minFreeSpace: applies to storage 'disk' only/ })
})

t.test('storage must be \'disk\' or an engine; checked at registration', async t => {
  for (const storage of ['s3', {}, { open: () => {}, remove: () => {} }, null]) {
    await t.rejects(app(t, { storage: storage as never }), { code: 'FST_NEXURE_INVALID_OPTION', message: /storage: expected 'disk' or a storage engine/ })
  }
})

t.test('request.uploadStats is live while the body arrives', async t => {
  const memory = memoryStorage()
  const server = Fastify()
  t.teardown(() => server.close())
  await server.register(streamUpload, { storage: memory.engine })
  let seen: UploadStats | null = null
  let final: UploadStats | null = null
  server.post('/upload', async request => {
    const timer = setInterval(() => { seen = request.uploadStats }, 5)
    try {
      await request.saveUploads()
    } finally { clearInterval(timer) }
    final = request.uploadStats
    return 'ok'
  })
  server.get('/stats', async request => request.uploadStats)
  await server.listen({ port: 0, host: '127.0.0.1' })
  t.same((await server.inject('/stats')).json(), { bytesReceived: 0, files: 0, currentFile: null }, 'zeros outside a multipart request')
  const body = multipartBody([{ name: 'a', filename: 'a', content: 'small' }, { name: 'b', filename: 'b.bin', content: { size: 1_000_000 } }]).toBuffer()
  const boundary = body.subarray(2, body.indexOf('\r\n')).toString()
  const socket = net.connect((server.server.address() as net.AddressInfo).port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  socket.write(`POST /upload HTTP/1.1\r\nhost: x\r\ncontent-type: multipart/form-data; boundary=${boundary}\r\ncontent-length: ${body.length}\r\n\r\n`)
  socket.write(body.subarray(0, 400_000))
  // Halfway through the second file, the handler can see where the upload is.
  // Both counters are sampled every 5 ms: wait for a sample taken after the 400 KB arrived (the
  // file's bytes alone could pass 300 KB in a sample taken before the last socket read).
  t.ok(await eventually(async () => (seen?.currentFile?.bytes ?? 0) > 300_000 && (seen?.bytesReceived ?? 0) >= 400_000 - 1000), 'the current file\'s bytes grow as they arrive')
  t.match(seen, { files: 1, currentFile: { fieldname: 'b', filename: 'b.bin', index: 2 } })
  t.ok(seen!.bytesReceived >= 400_000 - 1000 && seen!.bytesReceived <= 400_000, `bytesReceived ${seen!.bytesReceived}`)
  let response = ''
  socket.on('data', (data: Buffer) => { response += data.toString() })
  socket.write(body.subarray(400_000))
  t.ok(await eventually(async () => response.includes('ok')))
  t.same(final, { bytesReceived: body.length, files: 2, currentFile: null })
})

t.test('keepFiles with a durable engine: files the handler received survive a failed request, partial ones do not', async t => {
  const memory = memoryStorage()
  const server = Fastify()
  t.teardown(() => server.close())
  await server.register(streamUpload, { storage: memory.engine, keepFiles: true, maxFileSize: 1000 })
  server.post('/upload', async request => {
    for await (const file of request.uploads()) void file
    return 'not reached'
  })
  const res = await inject(server, [{ name: 'a', filename: 'a', content: 'kept' }, { name: 'b', filename: 'b', content: { size: 5000 } }])
  t.equal(res.statusCode, 413)
  t.same([...memory.objects.keys()], ['1-a'], 'the received file is the application\'s')
  t.equal(memory.writing.size, 0, 'the partial one was aborted')
})

t.test('a route can choose its own storage; the plugin\'s disk stays the default elsewhere', async t => {
  const tempDir = await testTempDir(t, 'nexure-upload-route-storage-')
  const memory = memoryStorage()
  const server = Fastify()
  t.teardown(() => server.close())
  await server.register(streamUpload, { tempDir })
  server.post('/memory', { config: { streamUpload: { storage: memory.engine } } }, async request => (await request.saveUploads<Record<string, unknown>>()).files)
  server.post('/disk', async request => (await request.saveUploads()).files.map(f => f.path.startsWith(tempDir)))
  t.throws(() => server.post('/bad', { config: { streamUpload: { storage: memory.engine, minFreeSpace: 1 } } }, async () => 'x'), { code: 'FST_NEXURE_INVALID_OPTION', message: /config\.streamUpload\.minFreeSpace of POST \/bad: applies to storage 'disk' only/ })
  const body = multipartBody([{ name: 'f', filename: 'f', content: 'x' }])
  const send = (url: string) => server.inject({ method: 'POST', url, headers: { 'content-type': body.contentType }, payload: body.toBuffer() })
  t.match((await send('/memory')).json(), [{ id: '1-f', size: 1 }])
  t.same([...memory.objects.keys()], ['1-f'])
  t.same((await send('/disk')).json(), [true])
})
