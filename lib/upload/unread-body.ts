import type { FastifyReply, FastifyRequest } from 'fastify'
import { afterResponseSent, endStream, http2StreamOf } from '../http/transport.js'
import { announcesClose, closeAfterAnswer, isStreamPayload } from '../stream/close-connection.js'

/**
 * Up to this many unread body bytes are read and discarded after an early answer so the
 * keep-alive connection stays usable; a larger (or unknown, chunked) rest closes it instead.
 * Same bound as streamBody's default drainLimit.
 */
export const UPLOAD_DRAIN_LIMIT = 64 * 1024

/**
 * Called from onSend. An answer given before the body was read (a 413 halfway through a file,
 * a handler that never called uploads(), a `break` out of the loop) leaves the request piped
 * into a busboy nobody reads, or paused: the socket stops being read and the next request on
 * the connection hangs (fastify#4588, multipart#630). Either drain a small rest or make this
 * the connection's last response, after which nothing that arrives on it is run
 * (see stream/close-connection.ts); over HTTP/2, the stream's (see http/transport.ts).
 */
export function releaseUnreadBody (request: FastifyRequest, reply: FastifyReply, bytesReceived: number, payload: unknown): void {
  const raw = request.raw
  if (raw.readableEnded || raw.destroyed) return
  const declared = request.headers['content-length'] === undefined ? NaN : Number(request.headers['content-length'])
  const remaining = raw.complete ? 0 : declared - bytesReceived
  if (remaining <= UPLOAD_DRAIN_LIMIT && !announcesClose(reply)) {
    raw.unpipe()
    raw.resume()
    return
  }
  const stream = http2StreamOf(raw)
  if (stream !== null) {
    // HTTP/2: no connection to close; this stream alone is reset once the response is sent.
    afterResponseSent(stream, () => {
      raw.unpipe()
      endStream(raw)
    })
    return
  }
  // A streamed reply may go on reading the upload while it is written.
  closeAfterAnswer(request, reply, isStreamPayload(payload))
}
