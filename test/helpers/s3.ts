// An S3-compatible server on loopback (s3rver, from the npm registry) for the storage tests:
// started on a free port with a data directory of its own, stopped and removed when the test
// ends. The client is the real AWS SDK v3, pointed at it.
import { createRequire } from 'node:module'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { AddressInfo } from 'node:net'
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import type { HasTeardown } from './multipart.js'

// The SDK warns once per process that its 2027 releases need Node 22; the tests run on 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

interface KoaContext {
  method: string
  path: string
  query: Record<string, string | string[] | undefined>
  status: number
  type: string
  body: unknown
}
interface S3rverInstance {
  run: () => Promise<AddressInfo>
  close: () => Promise<void>
  /** Koa's middleware list; composed when the server starts listening. */
  middleware: Array<(ctx: KoaContext, next: () => Promise<void>) => Promise<void>>
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance
// s3rver ships no types; loaded through require so that TypeScript does not look for them.
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor

export interface TestS3 {
  client: S3Client
  bucket: string
  endpoint: string
  /** s3rver's data directory. */
  dataDir: string
  /** Keys in the bucket (ListObjectsV2, every page). */
  keys: () => Promise<string[]>
  /** An object's bytes. */
  object: (key: string) => Promise<Buffer>
  /**
   * Multipart uploads started and neither completed nor aborted. s3rver does not implement
   * ListMultipartUploads; it keeps each pending upload in `<bucket>/._S3rver_uploads/<id>/`.
   */
  pendingUploads: () => Promise<string[]>
}

/** A client for an S3-compatible endpoint, as the README tells users to configure one for s3rver/MinIO. */
export function s3Client (endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    // SDK releases from 2025 on send CRC32 checksums by default, which s3rver does not know.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED'
  })
}

/**
 * s3rver 3.7.1 answers AbortMultipartUpload (DELETE /bucket/key?uploadId=...) with 405: it does
 * not implement it. This adds it as S3 documents it: the upload's parts are removed (204), an
 * unknown upload id is 404 NoSuchUpload. A part that arrives after the abort recreates the
 * upload's directory (s3rver's putPart does mkdir -p), so a late part still shows as pending.
 */
function abortMultipartUpload (dataDir: string): S3rverInstance['middleware'][number] {
  return async (ctx, next) => {
    const uploadId = ctx.query.uploadId
    const [, bucket, ...key] = ctx.path.split('/')
    if (ctx.method !== 'DELETE' || typeof uploadId !== 'string' || bucket === undefined || key.length === 0 || !/^[0-9a-f]+$/.test(uploadId)) {
      await next()
      return
    }
    const dir = path.join(dataDir, bucket, '._S3rver_uploads', uploadId)
    const exists = await stat(dir).then(() => true, () => false)
    if (!exists) {
      ctx.status = 404
      ctx.type = 'application/xml'
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message><UploadId>${uploadId}</UploadId></Error>`
      return
    }
    await rm(dir, { recursive: true, force: true })
    ctx.status = 204
  }
}

export async function startS3 (t: HasTeardown, bucket = 'nexure-test'): Promise<TestS3> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'nexure-s3rver-'))
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dataDir })
  server.middleware.unshift(abortMultipartUpload(dataDir))
  const address = await server.run()
  const endpoint = `http://127.0.0.1:${address.port}`
  const client = s3Client(endpoint)
  t.teardown(async () => {
    client.destroy()
    await server.close()
    await rm(dataDir, { recursive: true, force: true })
  })
  await client.send(new CreateBucketCommand({ Bucket: bucket }))
  return {
    client,
    bucket,
    endpoint,
    dataDir,
    async keys () {
      const keys: string[] = []
      let token: string | undefined
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }))
        for (const object of page.Contents ?? []) keys.push(object.Key!)
        token = page.NextContinuationToken
      } while (token !== undefined)
      return keys.sort()
    },
    async object (key) {
      const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
      return Buffer.from(await answer.Body!.transformToByteArray())
    },
    async pendingUploads () {
      return (await readdir(path.join(dataDir, bucket, '._S3rver_uploads')).catch(() => [])).sort()
    }
  }
}
