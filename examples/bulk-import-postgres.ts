import { finished } from 'node:stream/promises'
import Fastify, { type FastifyError } from 'fastify'
import pg, { type DatabaseError, type PoolClient } from 'pg'
import { from as copyFrom, type CopyStreamQuery } from 'pg-copy-streams'
import { streamBody } from 'nexure'

// Bulk import into PostgreSQL: POST /import streams a JSON array (or NDJSON) of rows of any size
// into a table through `COPY ... FROM STDIN`, the fastest way into PostgreSQL. Every row is
// checked against `itemSchema` before its batch reaches the handler; the table's columns are
// the schema's properties. The handler writes each batch to the COPY stream and, when the
// stream's buffer is full, waits for it to drain: its `for await` pace is COPY's pace, so a slow
// database holds the client back through TCP and the server's memory stays flat.
//
// Commits: one COPY is one transaction, so rows are committed per COPY. A non-atomic import
// runs one COPY per COMMIT_ROWS rows (default 50,000: 50 batches; the statement's round trips
// and commit are then a small share of its time, where a COPY per 1000-row batch stalls the
// stream at every batch and took 2.0x as long for a 20 MB body). A fault (an invalid row, malformed JSON, a value PostgreSQL refuses,
// a client that goes away) aborts the COPY in progress (CopyFail): the COPYs before it stay
// committed, and the answer says how many rows that is. With `?atomic=1` the whole import is a
// single COPY, and a fault leaves the table as it was.
//
//   PGHOST=/var/run/postgresql PGDATABASE=mydb node dist/examples/bulk-import-postgres.js
//   node dist/examples/large-body-client.js --size 1GB --url http://127.0.0.1:3000/import
//   curl --data-binary @rows.json -H 'content-type: application/json' http://127.0.0.1:3000/import
//   curl http://127.0.0.1:3000/count
//
// Connection: the usual PG* environment variables (PGHOST, PGPORT, PGUSER, PGPASSWORD,
// PGDATABASE), read by `pg`. TABLE names the table (default `items`), created if missing.
// Answers: `{ inserted, batches }`, or on an error `{ error: { code, message }, committed, batches }`
// (`committed`: rows that are in the table for good; `batches`: batches the handler took).

const itemSchema = {
  type: 'object',
  required: ['id', 'name', 'amount'],
  properties: {
    id: { type: 'integer' },
    name: { type: 'string' },
    amount: { type: 'number' },
    level: { type: ['string', 'null'] }
  }
} as const

type Row = Record<string, unknown>

const TABLE = process.env.TABLE ?? 'items'
const COMMIT_ROWS = Number(process.env.COMMIT_ROWS ?? 50_000)
if (!Number.isInteger(COMMIT_ROWS) || COMMIT_ROWS < 1) throw new Error(`COMMIT_ROWS must be a positive integer, got ${process.env.COMMIT_ROWS}`)

// The table, from the schema: a JSON type maps to a PostgreSQL type; required means NOT NULL.
const PG_TYPES: Record<string, string> = { integer: 'bigint', number: 'double precision', string: 'text', boolean: 'boolean', object: 'jsonb', array: 'jsonb' }
const required = new Set<string>(itemSchema.required)
const columns = Object.entries(itemSchema.properties).map(([name, property]) => {
  const types = ([] as string[]).concat(property.type).filter(type => type !== 'null')
  const type = PG_TYPES[types[0] ?? '']
  if (types.length !== 1 || type === undefined) throw new Error(`itemSchema: property ${name} needs one JSON type (and maybe null)`)
  return { name, sql: `${pg.escapeIdentifier(name)} ${type}${required.has(name) ? ' NOT NULL' : ''}` }
})
const table = pg.escapeIdentifier(TABLE)
const COPY_SQL = `COPY ${table} (${columns.map(c => pg.escapeIdentifier(c.name)).join(', ')}) FROM STDIN`

// COPY's text format: one line per row, columns separated by tabs, `\N` for NULL, and a
// backslash escape for the four characters that would otherwise end a value, a row or an escape.
// (NUL cannot be stored in a PostgreSQL text value at all: PostgreSQL refuses that row.)
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' }
const SPECIAL = /[\\\t\n\r]/g

function copyValue (value: unknown): string {
  if (value === null || value === undefined) return '\\N'
  const text = typeof value === 'string'
    ? value
    : typeof value === 'object' ? JSON.stringify(value) : typeof value === 'boolean' ? (value ? 't' : 'f') : String(value)
  return text.replace(SPECIAL, char => ESCAPES[char]!)
}

function copyLines (rows: Row[]): string {
  let text = ''
  for (const row of rows) {
    for (let i = 0; i < columns.length; i++) text += (i === 0 ? '' : '\t') + copyValue(row[columns[i]!.name])
    text += '\n'
  }
  return text
}

/**
 * One COPY statement on `client`: write batches to it, then commit it or abort it.
 *
 * One write at a time: each batch waits until the COPY stream has passed it to the connection's
 * socket (and that socket has drained), so no batch ever waits inside the stream's own buffer.
 * That wait is what holds the request body back. It also sidesteps a crash in pg-copy-streams
 * 7.0.0 (brianc/node-pg-copy-streams#171): when PostgreSQL refuses a row, writes still buffered
 * in the stream are flushed to a connection it has already let go of, and the process dies of an
 * uncaught TypeError.
 */
class Copy {
  readonly #stream: CopyStreamQuery
  readonly #done: Promise<void>
  #failed: Error | null = null
  rows = 0

  constructor (client: PoolClient) {
    this.#stream = client.query(copyFrom(COPY_SQL))
    // PostgreSQL may refuse a row while nobody awaits a write: remember it, never write again.
    this.#stream.on('error', error => { this.#failed ??= error })
    this.#done = finished(this.#stream)
    this.#done.catch(() => {})
  }

  async write (rows: Row[]): Promise<void> {
    if (this.#failed !== null) throw this.#failed
    this.rows += rows.length
    const written = new Promise<void>((resolve, reject) => {
      this.#stream.write(copyLines(rows), error => { if (error == null) resolve(); else reject(error) })
    })
    written.catch(() => {})
    await Promise.race([written, this.#done])
    if (this.#failed !== null) throw this.#failed
  }

  /** Sends CopyDone and waits for PostgreSQL to commit the rows. */
  async commit (): Promise<void> {
    this.#stream.end()
    await this.#done
  }

  /** CopyFail, unless PostgreSQL failed the COPY itself: either way it is rolled back. */
  async abort (reason: Error): Promise<void> {
    if (this.#failed === null) this.#stream.destroy(reason)
    await this.#done.catch(() => {})
  }
}

/** A row PostgreSQL refused: 400 naming it (COPY counts lines from 1 in each statement). */
function refusedRow (error: DatabaseError, firstRow: number): FastifyError | null {
  // Class 22 is a value that does not fit its column, 23 a constraint the row breaks.
  if (error.code === undefined || !/^2[23]/.test(error.code)) return null
  // `where` reads `COPY items, line 12, column id: "1e+30"`.
  const at = /\bline (\d+)(?:, column ([^:]+))?/.exec(error.where ?? '')
  const row = at === null ? 'A row' : `Row ${firstRow + Number(at[1]) - 1}${at[2] === undefined ? '' : ` (column ${at[2]})`}`
  return Object.assign(new Error(`${row} was refused by PostgreSQL: ${error.message} (SQLSTATE ${error.code})`), {
    code: 'ERR_IMPORT_REFUSED', statusCode: 400
  }) as FastifyError
}

const pool = new pg.Pool({ max: 10, application_name: 'nexure-bulk-import' })
await pool.query(`CREATE TABLE IF NOT EXISTS ${table} (${columns.map(c => c.sql).join(', ')})`)

const app = Fastify()
await app.register(streamBody, { batchSize: 1000 })
app.addHook('onClose', async () => { await pool.end() })

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
  const commitRows = atomic ? Infinity : COMMIT_ROWS
  const client = await pool.connect()
  let committed = 0
  let batches = 0
  let copy: Copy | null = null
  let broken: Error | undefined
  try {
    for await (const batch of request.batches<Row>()) {
      copy ??= new Copy(client)
      await copy.write(batch)
      batches++
      if (copy.rows >= commitRows) {
        await copy.commit()
        committed += copy.rows
        copy = null
      }
    }
    if (copy !== null) {
      await copy.commit()
      committed += copy.rows
    }
    return { inserted: committed, batches }
  } catch (caught) {
    const error = caught as FastifyError & DatabaseError
    await copy?.abort(error)
    // A connection that failed (not a statement PostgreSQL refused) is not given back to the pool.
    if (error.severity === undefined && error.code?.startsWith('FST_NEXURE_') !== true) broken = error
    // The client is gone: there is nobody to answer (Fastify logs it).
    if (error.code === 'FST_NEXURE_ABORTED') throw error
    const refused = error.severity === undefined ? null : refusedRow(error, committed)
    const { statusCode, code, message } = refused ?? error
    const status = statusCode ?? 500
    return reply.code(status).send({ error: { code: status === 500 ? 'ERR_IMPORT' : code, message }, committed, batches })
  } finally {
    client.release(broken)
  }
})

app.get('/count', async () => {
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)
  return { count: Number(rows[0]?.n ?? 0) }
})

const address = await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' })
console.log(`listening on ${address}`)
console.error(`table: ${TABLE} in database ${process.env.PGDATABASE ?? '(PGUSER\'s)'}, a COPY per ${COMMIT_ROWS} rows
try it:
  node dist/examples/large-body-client.js --size 100MB --url ${address}/import
  node dist/examples/large-body-client.js --size 100MB --format ndjson --invalid-at 54321 --url '${address}/import?atomic=1'
  node dist/examples/large-body-client.js --size 100MB --out rows.json
  curl --data-binary @rows.json -H 'content-type: application/json' ${address}/import
  curl ${address}/count`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}
