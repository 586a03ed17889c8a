// HTTP/2 test clients: node:http2 sessions over cleartext and TLS, with a request helper that
// writes its body with backpressure and reports how the server ended the stream.
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2'
import { readFileSync } from 'node:fs'
import type { Test } from 'tap'

/**
 * A self-signed certificate for localhost and 127.0.0.1 (P-256, valid 100 years), made once with
 * `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 36500 -nodes
 * -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1`. For tests only.
 */
export const testTls = {
  key: readFileSync(new URL('../fixtures/localhost-key.pem', import.meta.url)),
  cert: readFileSync(new URL('../fixtures/localhost-cert.pem', import.meta.url))
}

/** Fastify server options for each HTTP/2 setup a user runs. */
export const HTTP2_SETUPS = {
  'HTTP/2 cleartext': { http2: true as const },
  'HTTP/2 TLS': { http2: true as const, https: testTls },
  'HTTP/2 TLS with allowHTTP1': { http2: true as const, https: { ...testTls, allowHTTP1: true } }
}

/** One HTTP/2 session to `url`, closed when the test ends. */
export async function h2Session (t: Test, url: string): Promise<ClientHttp2Session> {
  const session = http2.connect(url, { ca: testTls.cert })
  t.teardown(() => { session.destroy() })
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve())
    session.once('error', reject)
  })
  return session
}

export interface H2Answer {
  status: number
  headers: IncomingHttpHeaders
  body: string
  /** Bytes of the request body the client got to write before the stream ended. */
  sent: number
  /** True if the client wrote its whole body. */
  sentAll: boolean
  /** How the stream ended: 'end' (both sides ended), 'reset' (RST_STREAM), or 'open' if it did not within `closeWithinMs`. */
  ended: 'end' | 'reset' | 'open'
  /** The stream's close code (0, NO_ERROR, for a clean end and for RFC 9113 §8.1's early close). */
  rstCode: number | undefined
}

export interface H2RequestOptions {
  /** How long after the response the stream may stay open before this reports 'open'. @default 3000 */
  closeWithinMs?: number
}

/**
 * Sends one request on `session`, writing `chunks` with backpressure (stopping as soon as the
 * stream is closed), and resolves once the response has ended and the stream is closed, or
 * `closeWithinMs` after the response if the stream stays open.
 */
export function h2Request (session: ClientHttp2Session, headers: OutgoingHttpHeaders, chunks: Iterable<Buffer | string>, options: H2RequestOptions = {}): Promise<H2Answer> {
  const closeWithinMs = options.closeWithinMs ?? 3000
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ...headers })
    let status = 0
    let responseHeaders: IncomingHttpHeaders = {}
    let body = ''
    let sent = 0
    let sentAll = false
    let responseEnded = false
    let settled = false
    let timer: NodeJS.Timeout | undefined
    const settle = (ended: H2Answer['ended']): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      const rstCode = stream.rstCode
      // The client side of a reset stream waits for its pending writes forever; free it.
      stream.destroy()
      resolve({ status, headers: responseHeaders, body, sent, sentAll, ended, rstCode })
    }
    const check = (): void => {
      if (!responseEnded) return
      if (stream.closed) settle(sentAll ? 'end' : 'reset')
    }
    stream.on('response', h => {
      status = Number(h[':status'])
      responseHeaders = h
    })
    stream.setEncoding('utf8')
    stream.on('data', (d: string) => { body += d })
    stream.on('end', () => {
      responseEnded = true
      check()
      timer = setTimeout(() => settle(stream.closed ? 'reset' : 'open'), closeWithinMs)
    })
    stream.on('aborted', check)
    stream.on('close', check)
    stream.on('error', error => {
      if (responseEnded) check()
      else if (!settled) { settled = true; reject(error) }
    })
    const iterator = chunks[Symbol.iterator]()
    const write = (): void => {
      for (;;) {
        if (stream.closed || stream.destroyed) return
        const next = iterator.next()
        if (next.done === true) {
          sentAll = true
          stream.end()
          return
        }
        sent += Buffer.byteLength(next.value)
        if (!stream.write(next.value)) {
          stream.once('drain', write)
          return
        }
      }
    }
    write()
  })
}

/** `count` JSON array items of ~100 bytes, as a body in 64 KiB-ish chunks; `bad` puts garbage after that many items. */
export function * jsonArrayChunks (count: number, bad = -1): Generator<string> {
  const item = JSON.stringify({ note: 'x'.repeat(88) })
  yield '['
  let chunk = ''
  for (let i = 0; i < count; i++) {
    if (i === bad) chunk += 'oops,'
    chunk += (i === 0 ? '' : ',') + item
    if (chunk.length >= 64 * 1024) {
      yield chunk
      chunk = ''
    }
  }
  yield chunk + ']'
}
