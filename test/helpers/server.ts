import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Test } from 'tap'
import { streamBody, type StreamBodyOptions } from '../../lib/index.js'

/** A Fastify app with streamBody registered; closed when the test ends. */
export async function bodyApp (t: Test, options: StreamBodyOptions = {}, server: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify(server)
  t.teardown(() => app.close())
  await app.register(streamBody, options)
  return app
}

/** Listens on a loopback port and returns the base URL. */
export async function listen (app: FastifyInstance): Promise<string> {
  return app.listen({ port: 0, host: '127.0.0.1' })
}

/** A route that counts the items it pulls, and returns them when asked to. */
export function countingRoute (app: FastifyInstance, url = '/import', keep = true): void {
  app.post(url, async (request) => {
    const items: unknown[] = []
    let batches = 0
    let count = 0
    for await (const batch of request.batches()) {
      batches++
      count += batch.length
      if (keep) items.push(...batch)
    }
    return { count, batches, items: keep ? items : undefined, body: request.body === undefined ? 'streamed' : 'buffered' }
  })
}
