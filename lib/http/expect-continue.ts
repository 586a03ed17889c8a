import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'

/**
 * `Expect: 100-continue` (RFC 9110 §10.1.1): the client sends the headers, then waits for
 * `100 Continue` before it sends the body. curl does this for every body over 1 MB. Left to
 * itself, Node answers 100 the moment the headers arrive, before any route has looked at them,
 * so a body that nexure refuses from its headers alone (Content-Length over the route's
 * `bodyLimit`, a charset or Content-Encoding it cannot read, `batches()` on a non-JSON type) is
 * sent anyway, and the 413 or 415 races it.
 *
 * nexure takes Node's place (a `checkContinue` listener replaces the automatic answer) and
 * sends `100 Continue` when something first reads the body: nexure's parser, Fastify's own
 * parser on another route, @fastify/multipart. The request goes through Fastify as usual, so the
 * decision is taken with the route's own options, in its own encapsulation context, by its own
 * error handler; a route that answers without reading (a refusal, an auth hook) never asks for
 * the body, and the client never sends it. Node then ends an HTTP/1.1 connection whose body
 * never came (`connection: close`); over HTTP/2 it closes the stream.
 */

type RawRequest = IncomingMessage | Http2ServerRequest
type RawResponse = ServerResponse | Http2ServerResponse

/** The part of an http, https or http2 server this needs. */
export interface ContinueServer {
  on (event: 'checkContinue', listener: (request: RawRequest, response: RawResponse) => void): unknown
  emit (event: 'request', request: RawRequest, response: RawResponse): boolean
  listenerCount (event: string): number
}

const armed = new WeakSet<object>()

/**
 * Makes this server send `100 Continue` when a request's body is first read instead of as soon
 * as its headers arrive. Once per server, whatever the number of registrations; a server whose
 * application already listens for `checkContinue` is left alone (it decides).
 */
export function continueOnFirstRead (server: ContinueServer): void {
  if (armed.has(server)) return
  armed.add(server)
  if (server.listenerCount('checkContinue') > 0) return
  server.on('checkContinue', (request, response) => {
    deferContinue(request, response)
    server.emit('request', request, response)
  })
}

function deferContinue (request: RawRequest, response: RawResponse): void {
  // `_read` is the Readable's pull: Node calls it when a consumer first wants data (pipe,
  // 'data', read(), resume()), and never before, so it is exactly "the body is wanted now".
  const read = request._read
  request._read = function readAfterContinue (this: RawRequest, size: number): void {
    request._read = read
    // Node dumps an unread body after the response; that must not ask for it.
    if (!response.headersSent && !response.writableEnded) response.writeContinue()
    read.call(this, size)
  }
}
