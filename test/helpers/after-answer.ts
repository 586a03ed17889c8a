// A client that keeps talking after an early answer, over a raw socket: it sends a whole first
// request (head and body, queued at once, as a client that does not watch for early answers
// does), waits for the server's answer, then sends a second request on the same connection a
// little later. Used to check RFC 9112 §9.6: after `connection: close` nothing more is processed.
import { once } from 'node:events'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

export interface ParsedResponse {
  status: number
  headers: Record<string, string>
  body: string
}

export interface AfterAnswer {
  /** The first answer, complete (its Content-Length bytes all arrived). */
  first: ParsedResponse
  /** Everything the server sent after the first answer (a second answer, if any). */
  after: string
  /** The server ended the connection (FIN) after the first answer, before the client did. */
  serverEnded: boolean
  /** A socket error seen by the client (ECONNRESET, EPIPE), and when. */
  error: { code: string, afterFirstAnswer: boolean } | null
  /** Bytes the client wrote: both requests, whole. */
  bytesWritten: number
}

export interface FirstRequest {
  /** The request line and headers, without the blank line. */
  head: string
  body: Iterable<Buffer | string>
  /**
   * Pieces of the body sent only once the answer has arrived, so that the answer is certain to
   * come while the client is still sending (else a fast server may have read it all by then).
   */
  rest?: Iterable<Buffer | string>
}

export function requestHead (method: string, path: string, headers: Record<string, string | number>): string {
  return `${method} ${path} HTTP/1.1\r\nhost: x\r\n` + Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')
}

/** Parses one HTTP/1.1 response (Content-Length or chunked) at the start of `text`; null while incomplete. */
export function parseResponse (text: string): { response: ParsedResponse, length: number } | null {
  const end = text.indexOf('\r\n\r\n')
  if (end === -1) return null
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const bodyStart = end + 4
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine ?? '')?.[1])
  if (headers['transfer-encoding'] === 'chunked') {
    // The body is left chunk-framed; the answer is whole once its last chunk has come.
    const last = text.indexOf('\r\n0\r\n\r\n', bodyStart - 2)
    if (last === -1) return null
    return { response: { status, headers, body: text.slice(bodyStart, last + 7) }, length: last + 7 }
  }
  const length = Number(headers['content-length'])
  if (!Number.isSafeInteger(length)) throw new Error(`response without content-length: ${statusLine ?? ''}`)
  // latin1 keeps one character per byte, so lengths are byte counts.
  if (text.length < bodyStart + length) return null
  return { response: { status, headers, body: text.slice(bodyStart, bodyStart + length) }, length: bodyStart + length }
}

/**
 * Sends `first`, waits for its answer, waits `delayMs`, sends `second` on the same connection,
 * and returns what came back within `waitMs` after that. The client is half-open (it can still
 * write after the server's FIN), as an attacker's or a buggy client's would be.
 */
export async function sendAfterAnswer (port: number, first: FirstRequest, second: string | Buffer, { delayMs = 300, waitMs = 400 } = {}): Promise<AfterAnswer> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  await once(socket, 'connect')
  let received = ''
  let firstAnswer: { response: ParsedResponse, length: number } | null = null
  let serverEnded = false
  let error: AfterAnswer['error'] = null
  let answered: () => void = () => {}
  const answer = new Promise<void>(resolve => { answered = resolve })
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1')
    firstAnswer ??= parseResponse(received)
    if (firstAnswer !== null) answered()
  })
  socket.on('end', () => { serverEnded = true })
  socket.on('error', (err: NodeJS.ErrnoException) => {
    error ??= { code: err.code ?? err.message, afterFirstAnswer: firstAnswer !== null }
    answered()
  })
  try {
    socket.write(first.head + '\r\n')
    for (const chunk of first.body) socket.write(chunk)
    await Promise.race([answer, sleep(10_000)])
    if (firstAnswer === null) throw new Error(`no complete answer to the first request (${(error as AfterAnswer['error'])?.code ?? 'timeout'}): ${received.slice(0, 200)}`)
    for (const chunk of first.rest ?? []) if (!socket.destroyed) socket.write(chunk)
    await sleep(delayMs)
    if (!socket.destroyed) socket.write(second)
    await sleep(waitMs)
    const ended = serverEnded
    // Half-close: the server sees the end of what the client sends.
    socket.end()
    await Promise.race([once(socket, 'close'), sleep(1000)])
    const { response, length } = firstAnswer as { response: ParsedResponse, length: number }
    return { first: response, after: received.slice(length), serverEnded: ended, error, bytesWritten: socket.bytesWritten }
  } finally {
    socket.destroy()
  }
}
