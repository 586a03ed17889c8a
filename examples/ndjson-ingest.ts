import Fastify from 'fastify'
import { streamBody } from 'nexure'

// Log ingestion: POST /logs takes NDJSON (one JSON object per line), gzip-compressed or not,
// and counts the lines per `level` as they stream in. nexure decodes `content-encoding: gzip`
// (or deflate, br) inside the stream, so neither the compressed nor the decoded body is ever
// held: memory stays at about one batch of lines, whatever the size of the feed.
//
//   node dist/examples/ndjson-ingest.js
//   node dist/examples/large-body-client.js --size 200MB --format ndjson --gzip --out logs.ndjson.gz
//   curl --data-binary @logs.ndjson.gz -H 'content-type: application/x-ndjson' -H 'content-encoding: gzip' http://127.0.0.1:3000/logs
//   # {"lines":2973025,"levels":{"info":1486513,"warn":743256,"error":371628,"debug":371628}}
//
// (Or in one step: large-body-client.js --format ndjson --gzip --url http://127.0.0.1:3000/logs)
// A line without a string `level` is counted under "none". A malformed line is a 400 that names
// its line number.

interface LogLine { level?: unknown }

const app = Fastify()
await app.register(streamBody, { batchSize: 1000 })

app.post('/logs', async (request) => {
  // A Map, not an object: the level names come from the client (think `__proto__`).
  const levels = new Map<string, number>()
  let lines = 0
  for await (const batch of request.batches<LogLine>()) {
    for (const line of batch) {
      const level = typeof line?.level === 'string' ? line.level : 'none'
      levels.set(level, (levels.get(level) ?? 0) + 1)
    }
    lines += batch.length
  }
  return { lines, levels: Object.fromEntries(levels) }
})

const address = await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' })
console.log(`listening on ${address}`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}
