import t from 'tap'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { ByteLimit } from '../../lib/stream/byte-limit.js'

async function run (chunks: Buffer[], limit: number): Promise<{ passed: number, error: (Error & { code?: string, statusCode?: number }) | null }> {
  let passed = 0
  const sink = new Writable({ write (chunk: Buffer, _encoding, done) { passed += chunk.length; done() } })
  try {
    await pipeline(Readable.from(chunks), new ByteLimit(limit, 'decoded body', 16), sink)
    return { passed, error: null }
  } catch (error) {
    return { passed, error: error as Error }
  }
}

t.test('exactly the limit passes, byte for byte', async t => {
  const result = await run([Buffer.alloc(6), Buffer.alloc(4)], 10)
  t.same(result, { passed: 10, error: null })
})

t.test('the chunk that crosses the limit fails the stream, and nothing of it passes', async t => {
  const result = await run([Buffer.alloc(6), Buffer.alloc(5), Buffer.alloc(100)], 10)
  t.equal(result.passed, 6, 'the first chunk passed; the crossing one did not')
  t.equal(result.error?.code, 'FST_NEXURE_BODY_TOO_LARGE')
  t.equal(result.error?.statusCode, 413)
  t.equal(result.error?.message, 'Request body is too large: decoded body (11 bytes so far) exceeds the limit of 10 bytes')
})
