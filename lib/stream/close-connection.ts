import { Socket } from 'node:net'
import type { FastifyReply, FastifyRequest } from 'fastify'

/**
 * The last answer on an HTTP/1.1 connection, given while the client may still be sending.
 *
 * RFC 9112 §9.6: a server that announces `connection: close` must not process any further
 * request on that connection. Yet it cannot simply stop reading: a socket closed with unread
 * bytes makes the kernel answer the client's next segment with a reset, which often reaches
 * the client before the answer does (undici then reports EPIPE instead of the 413). So, as web
 * servers do it (nginx's lingering_close):
 *
 * - from the moment the close is announced, what arrives is discarded *below* Node's HTTP
 *   parser, so a request sent behind the body is never parsed and no handler runs for an answer
 *   nobody will write (a client that retries elsewhere would run it twice). A streamed answer
 *   may still read the body, so there the parser is taken off once the answer is written: a
 *   request pipelined behind the body *while* such an answer streams is still parsed;
 * - once the answer is written, the write side is ended (the client reads the answer, then the
 *   end of the connection), the socket is read and discarded for up to LINGER_MS, then destroyed.
 *
 * Taking the parser off: Node's HTTP server feeds its parser straight from the socket's handle
 * until someone listens for 'data' on the socket; then it switches to feeding it from its own
 * 'data' listener (`_http_server.js`, `socketListenerWrap` → `unconsume`, the same on Node 20,
 * 22 and 24). So a discarding 'data' listener is added and the others are removed: only public
 * socket methods, no parser internals. test/stream-body-close.test.ts and
 * test/stream-upload-close.test.ts fail if a Node release wires its parser differently.
 */

const LINGER_MS = 2000

/** Sockets whose last answer is announced; nothing more is parsed on them. */
const closing = new WeakSet<Socket>()
/** Sockets whose HTTP parser no longer sees what arrives. */
const detached = new WeakSet<Socket>()
/** Sockets in their lingering close (write side ended, reading and discarding). */
const lingering = new WeakSet<Socket>()

/** True once `closeAfterAnswer` was called for a request on this socket. */
export function isClosing (socket: Socket | null): boolean {
  return socket !== null && closing.has(socket)
}

/** Someone (Fastify after a parser error, a hook) already made this the connection's last answer. */
export function announcesClose (reply: FastifyReply): boolean {
  return /^\s*close\s*$/i.test(String(reply.getHeader('connection') ?? ''))
}

/** True for a reply that is a stream (written while the handler may go on reading the body). */
export function isStreamPayload (payload: unknown): boolean {
  return payload !== null && typeof (payload as { pipe?: unknown } | undefined)?.pipe === 'function'
}

/**
 * Makes this answer the connection's last: announces `connection: close`, stops the HTTP
 * parser from seeing anything more, and closes with a linger once the answer is written.
 * Call it before the headers are sent (onSend).
 *
 * `stillReading`: the answer is a stream, and the handler may go on reading the body while it
 * is written (it claims the body lazily, inside the stream). The parser then keeps feeding the
 * body until the answer is out, and is taken off only then.
 */
export function closeAfterAnswer (request: FastifyRequest, reply: FastifyReply, stillReading = false): void {
  reply.header('connection', 'close')
  // HTTP/1 only: an HTTP/2 socket carries every stream of its session, and is not ours to touch.
  if (request.raw.httpVersionMajor !== 1) return
  const socket = request.raw.socket
  if (socket === null || socket.destroyed || closing.has(socket)) return
  closing.add(socket)
  if (!stillReading) {
    // Not wired as expected (not Node's HTTP/1 server): no linger, so Node destroys the
    // socket once the answer is written and nothing more can be read from it.
    if (!detachParser(socket)) return
    // Nothing is read until the answer is out; the client is held back by TCP flow control.
    socket.pause()
  }
  socket.destroySoon = lingeringClose
  // Node calls destroySoon() once an answer that announced the close is written; should a later
  // hook have taken the header off, the connection is closed all the same.
  reply.raw.once('finish', () => lingeringClose.call(socket))
}

function discard (): void {}

function detachParser (socket: Socket): boolean {
  if (detached.has(socket)) return true
  const feeders = socket.listeners('data') as Array<(chunk: Buffer) => void>
  if (feeders.length === 0) return false
  // Adding a 'data' listener first takes the parser off the handle (see above).
  socket.on('data', discard)
  for (const feeder of feeders) socket.removeListener('data', feeder)
  detached.add(socket)
  return true
}

function lingeringClose (this: Socket): void {
  if (lingering.has(this) || this.destroyed) return
  lingering.add(this)
  if (!detachParser(this)) {
    // Not wired as expected: close as Node would have, without a linger.
    Socket.prototype.destroySoon.call(this)
    return
  }
  this.end()
  const timer = setTimeout(() => this.destroy(), LINGER_MS)
  timer.unref()
  this.once('close', () => clearTimeout(timer))
  this.resume()
  // While the parser owned the handle, the request's backpressure may have stopped it, and the
  // Readable side still counts the read it asked for before as pending, so resume() alone would
  // not restart it. net.Socket's _read() starts the handle unless it is reading already.
  this._read(0)
}
