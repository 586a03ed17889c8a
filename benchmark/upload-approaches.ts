import Fastify, { type FastifyInstance } from 'fastify'
import multipart from '@fastify/multipart'
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { S3Client } from '@aws-sdk/client-s3'
import { s3Storage, streamUpload } from 'nexure'

// Three ways to take a file upload in Fastify. Each handler answers `{ files, bytes }` so the
// client can check that every byte arrived.

export const UPLOAD_APPROACHES = ['nexure', 'nexure-s3', 'save-request-files', 'to-buffer'] as const
export type UploadApproach = typeof UPLOAD_APPROACHES[number]

export const UPLOAD_LABELS: Record<UploadApproach, string> = {
  nexure: 'nexure streamUpload',
  'nexure-s3': 'nexure s3Storage (s3rver)',
  'save-request-files': 'multipart saveRequestFiles',
  'to-buffer': 'multipart toBuffer'
}

export function isUploadApproach (value: string): value is UploadApproach {
  return (UPLOAD_APPROACHES as readonly string[]).includes(value)
}

export const UPLOAD_ROUTE = '/upload'
export const BENCH_BUCKET = 'nexure-bench'

// The files must land where the benchmark looks for leftovers, or "0 files left" means nothing.
function assertUnder (tempDir: string, file: string): void {
  const relative = path.relative(tempDir, file)
  if (relative.startsWith('..') || path.isAbsolute(relative)) throw new Error(`the file ${file} is not under the temp dir ${tempDir}`)
}

/**
 * - nexure: `streamUpload`, files spilled to a per-request temp dir under `tempDir`.
 * - nexure-s3: `streamUpload` with `s3Storage`, each file streamed into an object of the
 *   S3-compatible server at `s3Endpoint` (default part size and queue).
 * - save-request-files: @fastify/multipart's disk mode, `saveRequestFiles({ tmpdir })`.
 * - to-buffer: @fastify/multipart's `file()` read into memory with `toBuffer()`.
 */
export async function buildUploadApp (approach: UploadApproach, tempDir: string, maxFileSize: number, s3Endpoint = ''): Promise<FastifyInstance> {
  const app = Fastify()
  if (approach === 'nexure-s3') {
    const client = new S3Client({
      endpoint: s3Endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED'
    })
    app.addHook('onClose', async () => client.destroy())
    await app.register(streamUpload, { maxFileSize, storage: s3Storage({ client, bucket: BENCH_BUCKET }) })
    app.post(UPLOAD_ROUTE, async (request) => {
      let files = 0
      let bytes = 0
      for await (const file of request.uploads()) {
        files++
        bytes += file.size
      }
      return { files, bytes }
    })
    return app
  }
  if (approach === 'nexure') {
    await app.register(streamUpload, { tempDir, maxFileSize, hash: false })
    app.post(UPLOAD_ROUTE, async (request) => {
      let files = 0
      let bytes = 0
      for await (const file of request.uploads()) {
        assertUnder(tempDir, file.path)
        files++
        bytes += file.size
      }
      return { files, bytes }
    })
    return app
  }
  await app.register(multipart, { limits: { fileSize: maxFileSize }, throwFileSizeLimit: true })
  if (approach === 'save-request-files') {
    app.post(UPLOAD_ROUTE, async (request) => {
      const { files } = await request.saveRequestFiles({ tmpdir: tempDir })
      let bytes = 0
      for (const file of files) {
        assertUnder(tempDir, file.filepath)
        bytes += (await stat(file.filepath)).size
      }
      return { files: files.length, bytes }
    })
    return app
  }
  app.post(UPLOAD_ROUTE, async (request) => {
    const file = await request.file()
    if (file === undefined) return { files: 0, bytes: 0 }
    const buffer = await file.toBuffer()
    return { files: 1, bytes: buffer.length }
  })
  return app
}
