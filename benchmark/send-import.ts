import { Agent, request } from 'undici'
import { importBody } from './import-body.js'
import type { ClientJob, ClientResult } from './protocol.js'

/**
 * Streams one JSON array of rows of at most `job.size` bytes to a bulk-import server, times the
 * request until the whole answer is read, and checks that the server inserted every row sent.
 */
export async function sendImport (job: ClientJob): Promise<ClientResult> {
  const dispatcher = new Agent({ headersTimeout: job.timeoutMs, bodyTimeout: job.timeoutMs, connections: 1 })
  const body = importBody(job.size)
  try {
    const started = performance.now()
    const response = await request(job.url, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(job.timeoutMs)
    })
    const text = await response.body.text()
    const ms = performance.now() - started
    if (response.statusCode !== 200) return { ok: false, error: `HTTP ${response.statusCode}`, status: response.statusCode, body: text.slice(0, 500) }
    const inserted = (JSON.parse(text) as { inserted?: unknown }).inserted
    if (inserted !== body.rows()) return { ok: false, error: `the server inserted ${String(inserted)} rows, the client sent ${body.rows()}`, body: text.slice(0, 500) }
    return { ok: true, ms, items: inserted, expectedItems: body.rows(), bytes: job.size }
  } catch (error) {
    const err = error as Error & { code?: string }
    return { ok: false, error: `${err.code ?? err.name}: ${err.message}` }
  } finally {
    await dispatcher.destroy()
  }
}
