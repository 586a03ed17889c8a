import t from 'tap'
import type { FastifyRequest } from 'fastify'
import { mustClose, restOf, type UnreadBody } from '../../lib/stream/unread-body.js'

// The decision of the unread-body policy both plugins share; its effect on real connections is
// tested over sockets in stream-body-keepalive, stream-body-close, stream-upload-keepalive and
// stream-upload-close.

function request (headers: Record<string, string>, complete = false): FastifyRequest {
  return { headers, raw: { complete } } as unknown as FastifyRequest
}

function body (rest: number, failed = false): UnreadBody {
  return { rest: () => rest, failed, stop () {} }
}

t.test('restOf: what the Content-Length says is still to come', async t => {
  t.equal(restOf(request({ 'content-length': '1000' }), 400), 600)
  t.equal(restOf(request({ 'content-length': '1000' }, true), 400), 0, 'a complete message has no rest, whatever was counted')
  t.equal(restOf(request({}), 0), Infinity, 'no Content-Length: unknown')
  t.equal(restOf(request({ 'content-length': '10', 'transfer-encoding': 'chunked' }), 0), Infinity, 'chunked wins over Content-Length')
  t.equal(restOf(request({ 'content-length': 'ten' }), 0), Infinity)
  t.equal(restOf(request({ 'content-length': '10' }), 20), 0, 'never negative')
})

t.test('mustClose: keep when all arrived, drain a short rest, close the rest', async t => {
  t.equal(mustClose(body(0), 0), false, 'the whole body arrived')
  t.equal(mustClose(body(0, true), 0), false, 'even after a failure: nothing is left in front of the next request')
  t.equal(mustClose(body(64), 64), false, 'a rest of exactly drainLimit is drained')
  t.equal(mustClose(body(65), 64), true)
  t.equal(mustClose(body(1, true), 64), true, 'a failed body is not drained')
  t.equal(mustClose(body(Infinity), Number.MAX_SAFE_INTEGER), true, 'an unknown rest is never drained')
})
