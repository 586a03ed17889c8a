import { Readable } from 'node:stream'
import Fastify from 'fastify'
import { streamBody } from 'nexure'

// Full duplex: the answer streams out while the request body is still streaming in. Each batch
// of the NDJSON (or JSON array) body becomes one NDJSON result line as soon as it is parsed, so
// the client reads results long before it has finished sending, and the server holds one batch
// at a time whatever the body's size.
//
//   node dist/examples/transform-stream.js
//   curl -N --data-binary @big.ndjson -H 'content-type: application/x-ndjson' http://localhost:3000/transform
//
// (`-N` turns off curl's output buffering, so the lines show as they come.)

interface Row { amount?: unknown }

const app = Fastify()
await app.register(streamBody, { batchSize: 1000 })

app.post('/transform', async (request, reply) => {
  async function * results (): AsyncGenerator<string> {
    let batch = 0
    let items = 0
    try {
      for await (const rows of request.batches<Row>()) {
        let amount = 0
        for (const row of rows) if (typeof row?.amount === 'number') amount += row.amount
        items += rows.length
        yield `${JSON.stringify({ batch: batch++, items: rows.length, amount })}\n`
      }
      yield `${JSON.stringify({ done: true, items, batches: batch, stats: request.streamStats })}\n`
    } catch (error) {
      // The status line is long gone: a fault in the body becomes the last line of the answer.
      const { code, message } = error as Error & { code?: string }
      yield `${JSON.stringify({ error: { code, message }, items })}\n`
    }
  }
  return reply.type('application/x-ndjson').send(Readable.from(results()))
})

const address = await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' })
console.log(`listening on ${address}`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}
