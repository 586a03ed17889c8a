import type { FastifyReply, FastifyRequest } from 'fastify'
import { afterResponseSent, endStream, http2StreamOf } from '../http/transport.js'
import { announcesClose, closeAfterAnswer, isClosing, isStreamPayload } from './close-connection.js'

// What happens to a body the handler did not read to its end, for streamBody and streamUpload
// alike. A handler may answer before it has read the whole body (it broke out of its loop, a
// 400/413 ended it, it never looked at the body). Node will not dump a body that was piped and
// paused, so the next request on that keep-alive connection would wait behind the unread bytes
// (fastify#4588, multipart#630). The policy:
//
// - the whole body has arrived: nothing to do, the connection serves the next request;
// - a short rest (up to `drainLimit`) of a body whose reading did not fail: read and discarded
//   after the answer, and the connection is reused;
// - anything else: the answer is the connection's last (`connection: close`, nothing more is
//   parsed, a lingering close so the client reads the answer rather than a reset; see
//   close-connection.ts); over HTTP/2, the stream alone is reset with NO_ERROR once the
//   response is sent (see http/transport.ts).

/** An unread body, as one plugin sees it. */
export interface UnreadBody {
  /** Bytes still to come: 0 once the whole body arrived, Infinity when unknown (chunked). */
  rest (): number
  /** Reading the body failed (a parse error, a limit): what follows it cannot be trusted. */
  readonly failed: boolean
  /** Stops reading the body (unpipes it, destroys the reader); called before any drain. */
  stop (): void
}

/** Bytes of a body not received yet, from its Content-Length: Infinity when it has none. */
export function restOf (request: FastifyRequest, bytesReceived: number): number {
  if (request.raw.complete) return 0
  const declared = request.headers['content-length']
  if (declared === undefined || request.headers['transfer-encoding'] !== undefined) return Infinity
  const length = Number(declared)
  return Number.isSafeInteger(length) ? Math.max(0, length - bytesReceived) : Infinity
}

/** True when the rest of `body` must close the connection (or the HTTP/2 stream) rather than be drained. */
export function mustClose (body: UnreadBody, drainLimit: number): boolean {
  const rest = body.rest()
  // The whole body has arrived (`complete` may lag: a 400 can be sent from the microtasks that
  // follow the body's last bytes, before the parser reports the message complete).
  if (rest === 0) return false
  return body.failed || rest > drainLimit
}

/**
 * onSend: the decision, taken before the headers go out. HTTP/2: nothing to announce (and
 * Fastify's `connection: close` after a parser error is forbidden there); the stream's rest is
 * settled once the response is sent. HTTP/1.1: when the rest must not be drained, or something
 * else already announced the close, this answer becomes the connection's last. `decideLater`:
 * the reply is a stream while the handler still reads the body (full duplex), so the body will
 * be read as the reply is written; the decision waits for `drainOrClose`.
 */
export function decideUnreadRest (request: FastifyRequest, reply: FastifyReply, payload: unknown, body: UnreadBody | null, drainLimit: number, decideLater = false): void {
  const stream = http2StreamOf(request.raw)
  if (stream !== null) {
    reply.removeHeader('connection')
    if (body !== null) afterResponseSent(stream, () => drainOrClose(request, body, drainLimit))
    return
  }
  if (body === null || decideLater) return
  // A streamed reply may still read the body while it is written (it claims the body inside the stream).
  if (mustClose(body, drainLimit) || announcesClose(reply)) closeAfterAnswer(request, reply, isStreamPayload(payload))
}

/**
 * After the answer (once the response has finished; for HTTP/2 once it is sent): stop reading,
 * then drain a short rest, or end what is too long. On a closing HTTP/1.1 connection the drained bytes no
 * longer reach the HTTP parser (see closeAfterAnswer).
 */
export function drainOrClose (request: FastifyRequest, body: UnreadBody, drainLimit: number): void {
  const raw = request.raw
  const announced = isClosing(raw.socket)
  const close = mustClose(body, drainLimit)
  body.stop()
  if (raw.destroyed) return
  if (http2StreamOf(raw) !== null) {
    // The same policy, for this stream only (the socket is the whole session's).
    if (close) endStream(raw)
    else raw.resume()
    return
  }
  if (!announced && close) {
    // The headers went out before the handler stopped reading (a full-duplex reply): the client
    // could not be told to close, and the rest is too long to drain. Closing is all that is left.
    raw.socket?.destroy()
    return
  }
  raw.resume()
}
