import { Agent, request } from 'undici'
import { multipartFileBody } from './multipart-body.js'
import type { ClientJob, ClientResult } from './protocol.js'

/**
 * Uploads one file of `job.size` bytes as multipart/form-data, times the request until the
 * whole response is read, and checks that the server received every byte of it. With
 * `abortAfterBytes`, the client instead goes away mid-file, and succeeds if it could.
 */
export async function sendUpload (job: ClientJob): Promise<ClientResult> {
  const dispatcher = new Agent({ headersTimeout: job.timeoutMs, bodyTimeout: job.timeoutMs, connections: 1 })
  try {
    const abort = new AbortController()
    const abortAfter = job.abortAfterBytes
    let sent = 0
    const { body, contentType, contentLength } = multipartFileBody(job.size, bytes => {
      sent = bytes
      if (abortAfter !== undefined && bytes >= abortAfter) abort.abort(new Error('the benchmark client goes away mid-upload'))
    })
    const started = performance.now()
    let response
    try {
      response = await request(job.url, {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': contentType, 'content-length': String(contentLength) },
        body,
        signal: AbortSignal.any([abort.signal, AbortSignal.timeout(job.timeoutMs)])
      })
    } catch (error) {
      if (abort.signal.aborted) return { ok: true, ms: performance.now() - started, items: 0, expectedItems: 0, bytes: sent, aborted: true }
      throw error
    }
    if (abortAfter !== undefined) {
      await response.body.dump()
      return { ok: false, error: `the server answered ${response.statusCode} before the client aborted at ${abortAfter} bytes` }
    }
    const text = await response.body.text()
    const ms = performance.now() - started
    if (response.statusCode !== 200) return { ok: false, error: `HTTP ${response.statusCode}`, status: response.statusCode, body: text.slice(0, 500) }
    const answer = JSON.parse(text) as { files?: unknown, bytes?: unknown }
    if (answer.files !== 1 || answer.bytes !== job.size) {
      return { ok: false, error: `the server got ${String(answer.files)} files, ${String(answer.bytes)} bytes; expected 1 file of ${job.size} bytes`, body: text.slice(0, 500) }
    }
    return { ok: true, ms, items: 1, expectedItems: 1, bytes: job.size }
  } catch (error) {
    const err = error as Error & { code?: string }
    return { ok: false, error: `${err.code ?? err.name}: ${err.message}` }
  } finally {
    await dispatcher.destroy()
  }
}
