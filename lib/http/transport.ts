import { constants, type Http2ServerRequest, type ServerHttp2Stream } from 'node:http2'
import type { IncomingMessage } from 'node:http'

/**
 * What an early answer means on each transport.
 *
 * HTTP/1.1: the connection carries one request after another, so an unread rest of a body sits
 * in front of the next request; the answer says `connection: close` and the connection ends.
 *
 * HTTP/2: every request is a stream of its own on a session shared with other requests. The
 * `connection` header is forbidden there (RFC 9113 §8.2.2; Node drops it with a warning), and
 * `request.raw.socket` is the session's socket, so closing it would end every other stream. RFC
 * 9113 §8.1 says what to do instead: send the complete response, then RST_STREAM with NO_ERROR,
 * which asks the client to stop sending that one body. Fastify's onResponse comes too late for
 * that: under HTTP/2 the response only reports `finish` once the stream closed, and a stream
 * whose body nobody reads never closes (the client stalls on flow control). So the decision is
 * taken when the stream's own writable side finishes, which Node signals once the frame with
 * END_STREAM went out: a reset sent then cannot cut the response short.
 */

type RawRequest = IncomingMessage | Http2ServerRequest

/** The HTTP/2 stream the request came on; null for HTTP/1.x and for `inject()`. */
export function http2StreamOf (raw: RawRequest): ServerHttp2Stream | null {
  return raw.httpVersionMajor === 2 && 'stream' in raw ? raw.stream : null
}

/** Runs `settle` once this stream's response is completely sent, unless the stream closed first. */
export function afterResponseSent (stream: ServerHttp2Stream, settle: () => void): void {
  if (stream.closed || stream.destroyed) return
  if (stream.writableFinished) {
    settle()
    return
  }
  const onFinish = (): void => {
    stream.removeListener('close', onClose)
    settle()
  }
  const onClose = (): void => { stream.removeListener('finish', onFinish) }
  stream.once('finish', onFinish)
  stream.once('close', onClose)
}

/**
 * Ends this one stream with RST_STREAM(NO_ERROR): the client stops sending the body and keeps
 * the response it has (RFC 9113 §8.1). Node sends the reset after the response if that is still
 * being written. The session and its other streams are untouched.
 */
export function endStream (raw: RawRequest): void {
  const stream = http2StreamOf(raw)
  if (stream === null) return
  if (!stream.closed && !stream.destroyed) stream.close(constants.NGHTTP2_NO_ERROR)
  // Node destroys a reset stream (and Fastify's onResponse runs) only once its readable side has
  // ended, so what had already arrived and sits unread in the request is discarded.
  raw.resume()
}
