import Fastify, { type FastifyInstance } from 'fastify'
import pg from 'pg'

// Three ways to take a large JSON array of rows into a database. Two are the examples
// themselves (examples/bulk-import-postgres.ts and bulk-import-sqlite.ts), run unchanged in the
// benchmark's server process; the third is what a Fastify server does without nexure, built
// here. All three answer `{ inserted, batches }` on POST /import, and check every row against
// the same schema first.

export const IMPORT_APPROACHES = ['nexure-postgres', 'standard-postgres', 'nexure-sqlite'] as const
export type ImportApproach = typeof IMPORT_APPROACHES[number]

export const IMPORT_LABELS: Record<ImportApproach, string> = {
  'nexure-postgres': 'nexure → PostgreSQL COPY',
  'standard-postgres': 'Standard → PostgreSQL INSERTs',
  'nexure-sqlite': 'nexure → SQLite'
}

export function isImportApproach (value: string): value is ImportApproach {
  return (IMPORT_APPROACHES as readonly string[]).includes(value)
}

export const IMPORT_ROUTE = '/import'
/** The table every PostgreSQL approach fills (the example's default). */
export const IMPORT_TABLE = 'items'

/** The compiled example each nexure approach runs, relative to this file. */
export const IMPORT_EXAMPLES: Record<Exclude<ImportApproach, 'standard-postgres'>, string> = {
  'nexure-postgres': '../examples/bulk-import-postgres.js',
  'nexure-sqlite': '../examples/bulk-import-sqlite.js'
}

// The rows of examples/bulk-import-postgres.ts, as one schema for the whole body.
const rowSchema = {
  type: 'object',
  required: ['id', 'name', 'amount'],
  properties: { id: { type: 'integer' }, name: { type: 'string' }, amount: { type: 'number' }, level: { type: ['string', 'null'] } }
}

interface Row { id: number, name: string, amount: number, level?: string | null }

/**
 * Standard: Fastify's own JSON parser (the whole body as one string, then one `JSON.parse`),
 * `schema.body` validating the parsed array, and the rows inserted in one transaction by
 * multi-row `INSERT ... VALUES` statements of `insertRows` rows each. One statement for the
 * whole array is not possible: PostgreSQL takes at most 65,535 parameters per statement (16,383
 * rows of four columns).
 */
export async function buildStandardImportApp (bodyLimit: number, insertRows: number): Promise<FastifyInstance> {
  const pool = new pg.Pool({ max: 4 })
  await pool.query(`CREATE TABLE IF NOT EXISTS ${IMPORT_TABLE} (id bigint NOT NULL, name text NOT NULL, amount double precision NOT NULL, level text)`)
  const app = Fastify({ bodyLimit })
  app.addHook('onClose', async () => { await pool.end() })
  app.post<{ Body: Row[] }>(IMPORT_ROUTE, { schema: { body: { type: 'array', items: rowSchema } } }, async (request) => {
    const rows = request.body
    const client = await pool.connect()
    let batches = 0
    try {
      await client.query('BEGIN')
      for (let start = 0; start < rows.length; start += insertRows) {
        const chunk = rows.slice(start, start + insertRows)
        const values: unknown[] = []
        const tuples = chunk.map((row, i) => {
          values.push(row.id, row.name, row.amount, row.level ?? null)
          return `($${4 * i + 1}, $${4 * i + 2}, $${4 * i + 3}, $${4 * i + 4})`
        })
        await client.query(`INSERT INTO ${IMPORT_TABLE} (id, name, amount, level) VALUES ${tuples.join(', ')}`, values)
        batches++
      }
      await client.query('COMMIT')
    } catch (error) {
      await client.query('ROLLBACK')
      throw error
    } finally {
      client.release()
    }
    return { inserted: rows.length, batches }
  })
  return app
}
