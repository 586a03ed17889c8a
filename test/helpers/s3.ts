// An S3-compatible server on loopback (s3rver, with the AbortMultipartUpload it lacks, see
// benchmark/s3-server.ts) for the storage tests: started on a free port with a data directory
// of its own, stopped and removed when the test ends. The client is the real AWS SDK v3.
import { readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import { startLocalS3 } from '../../benchmark/s3-server.js'
import type { HasTeardown } from './multipart.js'

// The SDK warns once per process that its 2027 releases need Node 22; the tests run on 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

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

export async function startS3 (t: HasTeardown, bucket = 'nexure-test'): Promise<TestS3> {
  const server = await startLocalS3(tmpdir(), [bucket])
  const { endpoint, dataDir } = server
  const client = s3Client(endpoint)
  t.teardown(async () => {
    client.destroy()
    await server.close()
  })
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
