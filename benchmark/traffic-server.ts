import Fastify, { type FastifyInstance } from 'fastify'
import { createGunzip } from 'node:zlib'
import { streamBody } from 'nexure'
import { serveToParent } from './child-server.js'
import { TRAFFIC_APPS, isTrafficApp, type TrafficApp } from './traffic-rows.js'

// One server of `npm run bench:traffic`, forked with `<fastify|nexure>`. Both apps serve the same
// routes with the same handlers; the only difference is whether streamBody is registered. What
// Fastify alone cannot take by itself (NDJSON, a gzip body) it takes the way its documentation
// shows: a string content-type parser, a decompressing preParsing hook.

const ROW_SCHEMA = {
  type: 'array',
  items: {
    type: 'object',
    required: ['id', 'email'],
    properties: { id: { type: 'integer' }, email: { type: 'string' } }
  }
}

function count (body: unknown): { items: number } {
  return { items: Array.isArray(body) ? body.length : 1 }
}

export async function buildTrafficApp (kind: TrafficApp): Promise<FastifyInstance> {
  const app = Fastify({ bodyLimit: 2 * 1024 * 1024 })
  if (kind === 'nexure') {
    await app.register(streamBody)
  } else {
    app.addContentTypeParser('application/x-ndjson', { parseAs: 'string' }, (_request, text, done) => {
      try {
        done(null, (text as string).split('\n').filter(line => line.trim() !== '').map(line => JSON.parse(line) as unknown))
      } catch (error) {
        done(error as Error)
      }
    })
  }
  app.get('/ping', async () => ({ ok: true }))
  app.post('/json', async (request) => count(request.body))
  app.post('/ndjson', async (request) => count(request.body))
  app.post('/schema', { schema: { body: ROW_SCHEMA } }, async (request) => count(request.body))
  app.post('/gzip', {
    // Fastify alone: the decompressing hook its documentation shows. nexure decodes by itself.
    preParsing: kind === 'nexure'
      ? []
      : [async (request, _reply, payload) => {
          if (request.headers['content-encoding'] !== 'gzip') return payload
          const gunzip = createGunzip()
          let received = 0
          payload.on('data', (chunk: Buffer) => { received += chunk.length })
          payload.on('end', () => { (gunzip as unknown as { receivedEncodedLength: number }).receivedEncodedLength = received })
          payload.pipe(gunzip)
          return gunzip
        }]
  }, async (request) => count(request.body))
  return app
}

const [kind = ''] = process.argv.slice(2)
if (!isTrafficApp(kind)) {
  console.error(`usage (forked by traffic.js): traffic-server.js <${TRAFFIC_APPS.join('|')}>, got ${process.argv.slice(2).join(' ')}`)
  process.exit(2)
}
await serveToParent(await buildTrafficApp(kind))
