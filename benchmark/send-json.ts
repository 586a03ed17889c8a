import { Agent, request } from 'undici'
import { itemCount, jsonArrayBody } from './json-body.js'
import type { ClientJob, ClientResult } from './protocol.js'

/**
 * Streams one JSON array of `job.size` bytes to `job.url`, times the request until the whole
 * response is read, and checks the item count the server reports.
 */
export async function sendJsonArray (job: ClientJob): Promise<ClientResult> {
  const expectedItems = itemCount(job.size)
  const dispatcher = new Agent({ headersTimeout: job.timeoutMs, bodyTimeout: job.timeoutMs, connections: 1 })
  try {
    // A tiny request first, on the same keep-alive connection: the measured one then pays for
    // neither the connection nor the client's cold code.
    const warm = await request(job.url, { method: 'POST', dispatcher, headers: { 'content-type': 'application/json' }, body: '[]' })
    await warm.body.text()
    if (warm.statusCode !== 200) return { ok: false, error: `HTTP ${warm.statusCode} for an empty array`, status: warm.statusCode }
    const started = performance.now()
    const response = await request(job.url, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json', 'content-length': String(job.size) },
      body: jsonArrayBody(job.size),
      signal: AbortSignal.timeout(job.timeoutMs)
    })
    const text = await response.body.text()
    const ms = performance.now() - started
    if (response.statusCode !== 200) return { ok: false, error: `HTTP ${response.statusCode}`, status: response.statusCode, body: text.slice(0, 500) }
    const items = (JSON.parse(text) as { items?: unknown }).items
    if (items !== expectedItems) return { ok: false, error: `the server counted ${String(items)} items, expected ${expectedItems}`, body: text.slice(0, 500) }
    return { ok: true, ms, items, expectedItems, bytes: job.size }
  } catch (error) {
    const err = error as Error & { code?: string }
    return { ok: false, error: `${err.code ?? err.name}: ${err.message}` }
  } finally {
    await dispatcher.destroy()
  }
}
