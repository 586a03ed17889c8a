import Fastify from 'fastify'
import { streamUpload } from 'nexure'

// Uploads: POST /upload takes multipart/form-data with any number of files of any size. Each
// file streams to its own temp file while its SHA-256 is computed, and is yielded once it is
// completely on disk; the answer lists every file with its size and digest. Nothing is kept:
// the request's temp directory is removed after the response (set UPLOAD_DIR to choose where
// those directories are made; default os.tmpdir()).
//
//   node dist/examples/upload.js
//   head -c 1000000000 /dev/urandom > big.bin      # up to maxFileSize, 1 GiB by default
//   curl -F file=@big.bin http://127.0.0.1:3000/upload
//   # [{"field":"file","filename":"big.bin","size":1000000000,"sha256":"…"}]
//   sha256sum big.bin

const app = Fastify()
await app.register(streamUpload, {
  hash: 'sha256',
  ...(process.env.UPLOAD_DIR === undefined ? {} : { tempDir: process.env.UPLOAD_DIR })
})

app.post('/upload', async (request) => {
  const files = []
  for await (const file of request.uploads()) {
    // The file is at file.path now; move or copy it here to keep it (keepFiles is off).
    files.push({ field: file.fieldname, filename: file.filename, size: file.size, sha256: file.hash })
  }
  return files
})

const address = await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' })
console.log(`listening on ${address}`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}
