import { tmpdir } from 'node:os'
import path from 'node:path'
import Database from 'better-sqlite3'
import Fastify, { type FastifyError } from 'fastify'
import { streamBody } from 'nexure'

// Bulk import: POST /import takes a JSON array of rows of any size and inserts it into SQLite
// as it streams in, one transaction per batch of 1000 rows. Every row is checked against
// `itemSchema` before its batch reaches the handler, so a bad row stops the import with a 400
// naming its index, after the batches before it were committed: the answer says how many.
// With `?atomic=1` the whole import is one transaction, and any error rolls it all back.
//
//   node dist/examples/bulk-import-sqlite.js          # DB=/path/to/file.sqlite, PORT=3000
//   node dist/examples/large-body-client.js --size 1GB --url http://127.0.0.1:3000/import
//   node dist/examples/large-body-client.js --size 100MB --out rows.json
//   curl --data-binary @rows.json -H 'content-type: application/json' http://127.0.0.1:3000/import
//   curl http://127.0.0.1:3000/count
//
// Answers: `{ inserted, batches }`, or on an error `{ error: { code, message }, committed, batches }`
// (`committed`: rows that are in the database for good).

interface Row { id: number, name: string, amount: number }

const file = process.env.DB ?? path.join(tmpdir(), 'nexure-bulk-import.sqlite')
const db = new Database(file)
db.pragma('journal_mode = WAL') // readers (GET /count) see committed rows while an import runs
db.pragma('synchronous = NORMAL')
db.exec('CREATE TABLE IF NOT EXISTS items (id INTEGER NOT NULL, name TEXT NOT NULL, amount REAL NOT NULL)')
const insert = db.prepare<[number, string, number]>('INSERT INTO items (id, name, amount) VALUES (?, ?, ?)')
// Inside an open transaction (the atomic mode), better-sqlite3 runs this as a savepoint.
const insertBatch = db.transaction((rows: Row[]) => {
  for (const row of rows) insert.run(row.id, row.name, row.amount)
})
// A second connection for reads: it sees only what is committed, never an import in progress.
const reader = new Database(file, { readonly: true })
const countRows = reader.prepare<[], { n: number }>('SELECT count(*) AS n FROM items')

// One writer at a time. An atomic import keeps its transaction open across `await`s (while the
// next batch arrives), and anything else written on this connection meanwhile would join it.
// Non-atomic imports take the lock per batch, so they interleave batch by batch. (A client that
// stalls mid atomic import holds the lock until streamBody's idleTimeout, 30 s, ends it.)
let writer: Promise<unknown> = Promise.resolve()
function exclusive<T> (work: () => T | Promise<T>): Promise<T> {
  const result = writer.then(work)
  writer = result.catch(() => {})
  return result
}

const itemSchema = {
  type: 'object',
  required: ['id', 'name', 'amount'],
  properties: { id: { type: 'integer' }, name: { type: 'string' }, amount: { type: 'number' } }
}

const app = Fastify()
await app.register(streamBody, { batchSize: 1000 })
app.addHook('onClose', async () => {
  await writer
  reader.close()
  db.close()
})

// Errors raised before the handler runs (a small body is parsed before it) get the same shape.
app.setErrorHandler((error: FastifyError, _request, reply) => {
  const status = error.statusCode ?? 500
  return reply.code(status).send({ error: { code: error.code, message: error.message }, committed: 0, batches: 0 })
})

app.post<{ Querystring: { atomic?: '0' | '1' } }>('/import', {
  schema: { querystring: { type: 'object', properties: { atomic: { type: 'string', enum: ['0', '1'] } } } },
  config: { streamBody: { itemSchema } }
}, async (request, reply) => {
  const atomic = request.query.atomic === '1'
  let rows = 0
  let batches = 0
  try {
    if (atomic) {
      await exclusive(async () => {
        db.exec('BEGIN IMMEDIATE')
        try {
          for await (const batch of request.batches<Row>()) {
            insertBatch(batch)
            rows += batch.length
            batches++
          }
          db.exec('COMMIT')
        } catch (error) {
          db.exec('ROLLBACK')
          throw error
        }
      })
    } else {
      for await (const batch of request.batches<Row>()) {
        await exclusive(() => insertBatch(batch))
        rows += batch.length
        batches++
      }
    }
    return { inserted: rows, batches }
  } catch (error) {
    const { statusCode, code, message } = error as FastifyError
    // The client is gone: there is nobody to answer (Fastify logs it).
    if (code === 'FST_NEXURE_ABORTED') throw error
    const committed = atomic ? 0 : rows
    return reply.code(statusCode ?? 500).send({ error: { code: code ?? 'ERR_IMPORT', message }, committed, batches })
  }
})

app.get('/count', async () => ({ count: countRows.get()?.n ?? 0 }))

const address = await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' })
console.log(`listening on ${address}`)
console.error(`database: ${file}
try it:
  node dist/examples/large-body-client.js --size 100MB --url ${address}/import
  node dist/examples/large-body-client.js --size 100MB --invalid-at 54321 --url '${address}/import?atomic=1'
  node dist/examples/large-body-client.js --size 100MB --out rows.json
  curl --data-binary @rows.json -H 'content-type: application/json' ${address}/import
  curl ${address}/count`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}
