import Fastify, { type FastifyInstance } from 'fastify'
import { pipeline } from 'node:stream/promises'
import parserStream from 'stream-json'
import streamArray from 'stream-json/streamers/stream-array.js'
import { streamBody, type StreamBodyOptions } from 'nexure'

// The three ways a Fastify server can take one large JSON array. Every handler does the same
// work, counting the items, and answers `{ items }`, so the client can check the count.

export const APPROACHES = ['standard', 'naive', 'nexure'] as const
export type Approach = typeof APPROACHES[number]

export const APPROACH_LABELS: Record<Approach, string> = {
  standard: 'Standard',
  naive: 'Naive stream',
  nexure: 'nexure'
}

export function isApproach (value: string): value is Approach {
  return (APPROACHES as readonly string[]).includes(value)
}

/** The route every approach serves. */
export const ROUTE = '/items'

/** What a kit may set on nexure's server beside the defaults (`bench:concurrency --batch-bytes`). */
export type NexureTuning = Pick<StreamBodyOptions, 'batchSize' | 'batchBytes'>

/**
 * A Fastify app for one approach, with body limits raised to `bodyLimit` bytes; `tuning` goes to
 * nexure's registration.
 * - standard: Fastify's own JSON parser reads the whole body into a string, then parses it.
 * - naive: a content-type parser that does not read, and a stream-json pipeline
 *   (parser → streamArray) in the handler, one item at a time, no batching, no pooling.
 * - nexure: `streamBody`, the handler pulls `request.batches()`.
 */
export async function buildApp (approach: Approach, bodyLimit: number, tuning: NexureTuning = {}): Promise<FastifyInstance> {
  if (approach === 'standard') {
    const app = Fastify({ bodyLimit })
    app.post(ROUTE, async (request) => {
      const body = request.body
      if (!Array.isArray(body)) throw new Error('expected a JSON array')
      return { items: body.length }
    })
    return app
  }
  if (approach === 'naive') {
    const app = Fastify({ bodyLimit })
    app.removeContentTypeParser('application/json')
    app.addContentTypeParser('application/json', (_request, _payload, done) => { done(null) })
    app.post(ROUTE, async (request) => {
      let items = 0
      await pipeline(request.raw, parserStream(), streamArray.asStream(), async (source: AsyncIterable<unknown>) => {
        for await (const _item of source) items++
      })
      return { items }
    })
    return app
  }
  const app = Fastify({ bodyLimit })
  await app.register(streamBody, { streamThreshold: 1024 * 1024, batchSize: 1000, ...tuning, bodyLimit })
  app.post(ROUTE, async (request) => {
    let items = 0
    let batches = 0
    for await (const batch of request.batches()) {
      items += batch.length
      batches++
    }
    return { items, batches }
  })
  return app
}
