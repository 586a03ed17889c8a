import t from 'tap'
import Fastify from 'fastify'
import multipart from '@fastify/multipart'
import { mkdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { streamUpload, type UploadedFile } from '../lib/index.js'
import { hostileNames } from './helpers/hostile-names.js'
import { eventually, listTree, testTempDir } from './helpers/multipart.js'

function rawMultipart (boundary: string, filenameHeader: string, content: string): Buffer {
  return Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="f"; ${filenameHeader}\r\nContent-Type: text/plain\r\n\r\n`, 'latin1'),
    Buffer.from(content),
    Buffer.from(`\r\n--${boundary}--\r\n`)
  ])
}

// filename*=UTF-8''… (RFC 5987) lets a client send any byte, NUL and separators included.
function encodedFilename (name: string): string {
  return `filename*=UTF-8''${encodeURIComponent(name)}`
}

for (const preservePath of [false, true]) {
  t.test(`client file names never become paths (@fastify/multipart preservePath: ${preservePath})`, async t => {
    const root = await testTempDir(t, 'nexure-upload-security-')
    const tempDir = path.join(root, 'uploads', 'spool')
    await mkdir(tempDir, { recursive: true })
    const app = Fastify()
    t.teardown(() => app.close())
    // preservePath makes busboy hand over the path as sent: nexure must not rely on busboy.
    await app.register(multipart, { preservePath })
    await app.register(streamUpload, { tempDir })
    let files: UploadedFile[] = []
    let contents: string[] = []
    app.post('/upload', async req => {
      files = (await req.saveUploads()).files
      contents = await Promise.all(files.map(f => readFile(f.path, 'utf8')))
      return 'ok'
    })
    for (const [input, expected] of hostileNames) {
      const boundary = 'security-boundary'
      const res = await app.inject({
        method: 'POST',
        url: '/upload',
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
        payload: rawMultipart(boundary, encodedFilename(input), 'payload')
      })
      t.equal(res.statusCode, 200, JSON.stringify(input))
      t.equal(files.length, 1)
      const [file] = files
      t.equal(file!.filename, expected, `metadata for ${JSON.stringify(input)}`)
      t.equal(path.basename(file!.path), 'upload-1', 'stored under a generated name')
      t.equal(path.dirname(path.dirname(file!.path)), tempDir, 'inside its request directory under tempDir')
      t.same(contents, ['payload'])
    }
    // busboy drops a part whose file name holds a bare CR or LF (header injection) altogether.
    const boundary = 'security-boundary'
    const crlf = await app.inject({
      method: 'POST',
      url: '/upload',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      payload: rawMultipart(boundary, encodedFilename('ok\r\nContent-Type: text/html'), 'payload')
    })
    t.equal(crlf.statusCode, 200)
    t.same(files, [], 'a CR/LF file name: the part is skipped')
    t.ok(await eventually(async () => (await listTree(root)).join() === ['uploads', path.join('uploads', 'spool')].join()), 'nothing was created anywhere else')
  })
}

t.test('a field named after an Object.prototype property is refused with a 400', async t => {
  const tempDir = await testTempDir(t, 'nexure-upload-security-')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload, { tempDir })
  app.post('/upload', async req => {
    await req.saveUploads()
    return { polluted: ({} as Record<string, unknown>).polluted === 'yes' }
  })
  const boundary = 'proto-boundary'
  const payload = `--${boundary}\r\nContent-Disposition: form-data; name="__proto__"\r\n\r\n{"polluted":"yes"}\r\n--${boundary}--\r\n`
  const res = await app.inject({ method: 'POST', url: '/upload', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, payload })
  t.equal(res.statusCode, 400)
  t.equal(res.json().code, 'FST_NEXURE_INVALID_MULTIPART')
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('uploadFields has no prototype: a field called "constructor" cannot shadow anything', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamUpload)
  app.post('/upload', async req => {
    await req.saveUploads()
    return { proto: Object.getPrototypeOf(req.uploadFields), keys: Object.keys(req.uploadFields) }
  })
  const boundary = 'b'
  const payload = `--${boundary}\r\nContent-Disposition: form-data; name="hasOwnProperty"\r\n\r\nx\r\n--${boundary}--\r\n`
  const res = await app.inject({ method: 'POST', url: '/upload', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, payload })
  // @fastify/multipart refuses every Object.prototype name, so this never reaches the fields.
  t.equal(res.statusCode, 400)
  t.equal(res.json().code, 'FST_NEXURE_INVALID_MULTIPART')
})
