import { mkdtemp, rm, stat } from 'node:fs/promises'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import path from 'node:path'

// An S3-compatible server on loopback for the upload benchmark and the storage tests: s3rver
// (from the npm registry) on a free port, with a data directory of its own.

interface KoaContext {
  method: string
  path: string
  query: Record<string, string | string[] | undefined>
  status: number
  type: string
  body: unknown
}
type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>
interface S3rverInstance {
  run: () => Promise<AddressInfo>
  close: () => Promise<void>
  /** Koa's middleware list; composed when the server starts listening. */
  middleware: Middleware[]
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance

export interface LocalS3 {
  /** `http://127.0.0.1:<port>` */
  endpoint: string
  /** s3rver's data directory: `<bucket>/<key>._S3rver_object`, pending uploads in `<bucket>/._S3rver_uploads/<id>/`. */
  dataDir: string
  close: () => Promise<void>
}

/**
 * s3rver 3.7.1 answers AbortMultipartUpload (DELETE /bucket/key?uploadId=...) with 405: it does
 * not implement it. This adds it as S3 documents it: the upload's parts are removed (204), an
 * unknown upload id is 404 NoSuchUpload. A part that arrives after the abort recreates the
 * upload's directory (s3rver's putPart does mkdir -p), so a late part still shows as pending.
 */
function abortMultipartUpload (dataDir: string): Middleware {
  return async (ctx, next) => {
    const uploadId = ctx.query.uploadId
    const [, bucket, ...key] = ctx.path.split('/')
    if (ctx.method !== 'DELETE' || typeof uploadId !== 'string' || bucket === undefined || key.length === 0 || !/^[0-9a-f]+$/.test(uploadId)) {
      await next()
      return
    }
    const dir = path.join(dataDir, bucket, '._S3rver_uploads', uploadId)
    if (!await stat(dir).then(() => true, () => false)) {
      ctx.status = 404
      ctx.type = 'application/xml'
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message><UploadId>${uploadId}</UploadId></Error>`
      return
    }
    await rm(dir, { recursive: true, force: true })
    ctx.status = 204
  }
}

/** Starts s3rver on 127.0.0.1 with a fresh data directory under `root` and the given buckets. */
export async function startLocalS3 (root: string, buckets: string[]): Promise<LocalS3> {
  // s3rver ships no types; loaded through require so that TypeScript does not look for them.
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor
  const dataDir = await mkdtemp(path.join(root, 'nexure-s3rver-'))
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: dataDir,
    configureBuckets: buckets.map(name => ({ name, configs: [] }))
  })
  server.middleware.unshift(abortMultipartUpload(dataDir))
  const address = await server.run()
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    dataDir,
    close: async () => {
      await server.close()
      await rm(dataDir, { recursive: true, force: true })
    }
  }
}
