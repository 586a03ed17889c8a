import { Agent, request } from 'undici'
import { itemCount, jsonArrayBody } from './json-body.js'
import type { ClientJob, ClientResult } from './protocol.js'

/**
 * Streams `job.streams` JSON arrays of `job.size` bytes each to `job.url` at once, one connection
 * per body, and times them from the first byte of the first to the end of the last answer. Every
 * answer's item count must be right; the first wrong one fails the whole job.
 */
export async function sendConcurrentJsonArrays (job: ClientJob): Promise<ClientResult> {
  const streams = job.streams ?? 1
  const expected = itemCount(job.size)
  const dispatcher = new Agent({ headersTimeout: job.timeoutMs, bodyTimeout: job.timeoutMs, connections: streams })
  const post = async (body: string | ReturnType<typeof jsonArrayBody>, length?: number): Promise<{ status: number, text: string }> => {
    const response = await request(job.url, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json', ...(length === undefined ? {} : { 'content-length': String(length) }) },
      body,
      signal: AbortSignal.timeout(job.timeoutMs)
    })
    return { status: response.statusCode, text: await response.body.text() }
  }
  try {
    // One tiny request per connection first, so the measured bodies pay for no connection set-up.
    const opened = await Promise.all(Array.from({ length: streams }, () => post('[]')))
    const refused = opened.find(answer => answer.status !== 200)
    if (refused !== undefined) return { ok: false, error: `HTTP ${refused.status} for an empty array`, status: refused.status, body: refused.text.slice(0, 500) }
    const started = performance.now()
    const answers = await Promise.all(Array.from({ length: streams }, () => post(jsonArrayBody(job.size), job.size)))
    const ms = performance.now() - started
    let items = 0
    for (const [index, answer] of answers.entries()) {
      if (answer.status !== 200) return { ok: false, error: `body ${index + 1} of ${streams}: HTTP ${answer.status}`, status: answer.status, body: answer.text.slice(0, 500) }
      const counted = (JSON.parse(answer.text) as { items?: unknown }).items
      if (counted !== expected) return { ok: false, error: `body ${index + 1} of ${streams}: the server counted ${String(counted)} items, expected ${expected}`, body: answer.text.slice(0, 500) }
      items += expected
    }
    return { ok: true, ms, items, expectedItems: expected * streams, bytes: job.size * streams }
  } catch (error) {
    const err = error as Error & { code?: string }
    return { ok: false, error: `${err.code ?? err.name}: ${err.message}` }
  } finally {
    await dispatcher.destroy()
  }
}
