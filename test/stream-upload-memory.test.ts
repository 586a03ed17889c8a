import t from 'tap'
import Fastify from 'fastify'
import net from 'node:net'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { streamUpload } from '../lib/index.js'
import { contentHash, eventually, listTree, multipartBody, testTempDir, type MultipartBody } from './helpers/multipart.js'

// 2 GiB, as the issue asks (~15 s on a 2-core machine); NEXURE_UPLOAD_MEMORY_BYTES sets another size.
const size = Number(process.env.NEXURE_UPLOAD_MEMORY_BYTES ?? 2 * 1024 ** 3)
const MiB = 1024 * 1024

// The child writes the form's head, then `size` bytes made with the same pattern as
// test/helpers/multipart.ts (patternChunks), then the form's tail.
function headAndTail (body: MultipartBody): [string, string] {
  const shell = multipartBody([{ name: 'big', filename: 'big.bin', content: '' }], body.boundary)
  const [head, , ...tail] = [...shell.chunks()]
  return [head!.toString('latin1'), Buffer.concat(tail).toString('latin1')]
}

const CLIENT_SCRIPT = `
const net = require('node:net')
let input = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', d => { input += d })
process.stdin.on('end', () => {
  const { port, contentType, length, parts, size, seed, chunkSize } = { ...JSON.parse(input), ...${JSON.stringify({ size, seed: 5, chunkSize: 64 * 1024 })} }
  const template = Buffer.alloc(chunkSize + 256)
  for (let i = 0; i < template.length; i++) template[i] = (i * 31 + seed * 7) & 0xff
  const socket = net.connect(port, '127.0.0.1', async () => {
    const write = b => socket.write(b) ? null : new Promise(r => socket.once('drain', r))
    await write('POST /upload HTTP/1.1\\r\\nhost: 127.0.0.1\\r\\ncontent-type: ' + contentType + '\\r\\ncontent-length: ' + length + '\\r\\nconnection: close\\r\\n\\r\\n')
    await write(Buffer.from(parts[0], 'latin1'))
    for (let sent = 0; sent < size; sent += chunkSize) {
      const n = Math.min(chunkSize, size - sent)
      const offset = sent % 256
      await write(Buffer.from(template.subarray(offset, offset + n)))
    }
    await write(Buffer.from(parts[1], 'latin1'))
  })
  let response = ''
  socket.setEncoding('latin1')
  socket.on('data', d => { response += d })
  socket.on('end', () => { process.stdout.write(response); process.exit(0) })
})
`

t.test(`a ${Math.round(size / MiB)} MiB upload over a real socket keeps server memory flat`, async t => {
  const tempDir = await testTempDir(t, 'nexure-upload-memory-')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload, { tempDir, maxFileSize: 4 * 1024 ** 3, hash: 'sha256' })
  let stored = { size: 0, hash: '' as string | null }
  app.post('/upload', async req => {
    for await (const file of req.uploads()) stored = { size: file.size, hash: file.hash }
    return 'ok'
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as net.AddressInfo).port

  const content = { size, chunkSize: 64 * 1024, seed: 5 }
  const body = multipartBody([{ name: 'big', filename: 'big.bin', content }])
  const expectedHash = contentHash(content)
  const parts = headAndTail(body)

  // The client runs in a child process, so the RSS measured here is the server's alone.
  const child = spawn(process.execPath, ['-e', CLIENT_SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill() })
  const baseline = process.memoryUsage().rss
  let peak = baseline
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 50)
  const started = Date.now()
  let output = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (data: string) => { output += data })
  try {
    child.stdin.end(JSON.stringify({ port, contentType: body.contentType, length: body.length, parts }))
    await once(child, 'exit')
  } finally {
    clearInterval(sampler)
  }
  t.match(output, /^HTTP\/1\.1 200 /, 'the upload succeeded')
  const seconds = (Date.now() - started) / 1000
  const growth = peak - baseline
  t.comment(`${Math.round(size / MiB)} MiB in ${seconds.toFixed(1)} s (${Math.round(size / MiB / seconds)} MiB/s), RSS ${Math.round(baseline / MiB)} -> peak ${Math.round(peak / MiB)} MiB (growth ${Math.round(growth / MiB)} MiB)`)
  t.equal(stored.size, size)
  t.equal(stored.hash, expectedHash, 'the hash computed while writing matches the bytes sent')
  t.ok(growth < 128 * MiB, `RSS growth ${Math.round(growth / MiB)} MiB is far below the ${Math.round(size / MiB)} MiB upload`)
  t.ok(await eventually(async () => (await listTree(tempDir)).length === 0, 10_000), 'the file is removed after the response')
})
