import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { request } from 'undici'
import { built, getJson, run, startExample, stop, type ImportAnswer } from './helpers/examples.js'
import { eventually } from './helpers/multipart.js'

// examples/bulk-import-postgres.ts against a real PostgreSQL server: the one in the PG*
// environment variables (`.ci/postgres.sh npm test` starts a throwaway one; CI does). Each run
// gets a database of its own, dropped at the end. Without a server this file skips, visibly and
// with the reason, unless it runs under CI (CI, or NEXURE_REQUIRE_POSTGRES=1), where that fails.

const REQUIRED = process.env.NEXURE_REQUIRE_POSTGRES === '1' || !['', '0', 'false'].includes(process.env.CI ?? '')

async function reachable (): Promise<string | null> {
  const client = new pg.Client({ connectionTimeoutMillis: 5000 })
  try {
    await client.connect()
    await client.end()
    return null
  } catch (error) {
    const where = process.env.PGHOST === undefined ? 'PGHOST not set' : `PGHOST=${process.env.PGHOST}`
    return `no PostgreSQL server (${where}: ${(error as Error).message}); run \`.ci/postgres.sh npm test\` to start one`
  }
}

interface RowIn { id: number, name: string, amount: number, level?: string | null }

/**
 * A JSON array (or NDJSON) of `count` rows made by `row(i)`, produced only when the socket asks
 * for more; `pulled()` says how many bytes have been taken so far.
 */
function rowsBody (count: number, row: (index: number) => RowIn, format: 'json' | 'ndjson' = 'json'): Readable & { pulled: () => number } {
  let index = 0
  let pulled = 0
  const stream = new Readable({
    read () {
      let text = index === 0 && format === 'json' ? '[' : ''
      while (index < count && text.length < 65536) {
        const json = JSON.stringify(row(index))
        text += format === 'ndjson' ? json + '\n' : (index === 0 ? json : ',' + json)
        index++
      }
      if (index === count && format === 'json') text += ']'
      pulled += Buffer.byteLength(text)
      this.push(text)
      if (index === count) this.push(null)
    }
  })
  return Object.assign(stream, { pulled: () => pulled })
}

const plainRow = (index: number): RowIn => ({ id: index, name: `row ${index}`, amount: index / 4, level: 'info' })

async function post (url: string, body: Readable | string, format: 'json' | 'ndjson' = 'json'): Promise<{ status: number, answer: ImportAnswer }> {
  const contentType = format === 'json' ? 'application/json' : 'application/x-ndjson'
  const response = await request(url, { method: 'POST', headers: { 'content-type': contentType }, body })
  return { status: response.statusCode, answer: await response.body.json() as ImportAnswer }
}

const unavailable = await reachable()
if (unavailable !== null && REQUIRED) {
  t.fail(`PostgreSQL is required here (CI / NEXURE_REQUIRE_POSTGRES) but ${unavailable}`)
}

t.test('bulk-import-postgres', { skip: unavailable ?? false }, async t => {
  const database = `nexure_test_${process.pid}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client()
  await admin.connect()
  await admin.query(`CREATE DATABASE ${database}`)
  t.teardown(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
    await admin.end()
  })
  const server = await startExample(t, 'bulk-import-postgres', { PGDATABASE: database })
  const db = new pg.Client({ database })
  await db.connect()
  t.teardown(() => db.end())
  const tableCount = async (): Promise<number> => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM items')).rows[0]?.n)
  const client = built('large-body-client')
  const importUrl = `${server.url}/import`

  await t.test('200,000 rows streamed by large-body-client are all in the table, each once', async t => {
    const result = await run(t, client, ['--count', '200000', '--url', importUrl])
    t.equal(result.code, 0, 'the client exits 0')
    t.same(JSON.parse(result.stdout), { inserted: 200000, batches: 200 })
    t.comment(result.stderr.trim())
    const { rows } = await db.query<{ n: string, ids: string, sum: string, levels: string }>(
      'SELECT count(*) AS n, count(DISTINCT id) AS ids, sum(id) AS sum, count(level) AS levels FROM items')
    t.same(rows[0], { n: '200000', ids: '200000', sum: String(199999 * 200000 / 2), levels: '200000' }, 'ids 0..199999, each once, with their level')
    t.equal((await getJson<{ count: number }>(`${server.url}/count`)).count, 200000, 'GET /count agrees')
  })

  await t.test('an invalid row in the middle: 400 naming it, the COPYs before it committed', async t => {
    await db.query('TRUNCATE items')
    const result = await run(t, client, ['--count', '200000', '--invalid-at', '123456', '--url', importUrl])
    t.equal(result.code, 1, 'the client exits 1 on an error status')
    t.match(result.stderr, /^HTTP 400/)
    const answer = JSON.parse(result.stdout) as ImportAnswer
    t.equal(answer.error?.code, 'FST_NEXURE_INVALID_ITEM')
    t.match(answer.error?.message, /Item 123456 is invalid/)
    // A COPY per 50,000 rows: two committed; the third (rows 100,000 to 122,999) was aborted.
    t.equal(answer.committed, 100000)
    t.equal(answer.batches, 123, 'the batch holding the bad row never reached the handler')
    const { rows } = await db.query<{ n: string, max: string }>('SELECT count(*) AS n, max(id) AS max FROM items')
    t.same(rows[0], { n: '100000', max: '99999' }, 'exactly the committed rows are in the table')
  })

  await t.test('?atomic=1: an invalid row in an NDJSON body leaves the count unchanged', async t => {
    const before = await tableCount()
    const result = await run(t, client, ['--count', '200000', '--format', 'ndjson', '--invalid-at', '150000', '--url', `${importUrl}?atomic=1`])
    t.equal(result.code, 1)
    const answer = JSON.parse(result.stdout) as ImportAnswer
    t.equal(answer.error?.code, 'FST_NEXURE_INVALID_ITEM')
    t.match(answer.error?.message, /Item 150000 is invalid/)
    t.equal(answer.committed, 0)
    t.equal(answer.batches, 150)
    t.equal(await tableCount(), before, 'nothing was committed')
  })

  await t.test('?atomic=1 without a fault commits everything at the end', async t => {
    const before = await tableCount()
    const result = await run(t, client, ['--count', '70000', '--format', 'ndjson', '--url', `${importUrl}?atomic=1`])
    t.equal(result.code, 0)
    t.same(JSON.parse(result.stdout), { inserted: 70000, batches: 70 })
    t.equal(await tableCount(), before + 70000)
  })

  await t.test('values survive COPY\'s text format: tabs, newlines, backslashes, \\N, NULL', async t => {
    await db.query('TRUNCATE items')
    const names = ['tab\there', 'line\nbreak', 'cr\r\nlf', 'back\\slash', '\\N', '\\.', '\\', 'end\\', '"quoted"', 'é, 日本, 🦀', '', ' spaces ', 'a\\tb']
    const rows: RowIn[] = names.map((name, id) => ({ id, name, amount: [0.1, -0, 1e300, 5e-324, -42.5][id % 5]!, level: [null, 'warn', '\\N', undefined][id % 4] }))
    rows.push({ id: Number.MAX_SAFE_INTEGER, name: 'max', amount: 1, level: 'info' })
    const { status, answer } = await post(importUrl, JSON.stringify(rows))
    t.equal(status, 200)
    t.same(answer, { inserted: rows.length, batches: 1 })
    const stored = await db.query<{ id: string, name: string, amount: number, level: string | null }>('SELECT id, name, amount, level FROM items ORDER BY id')
    t.same(stored.rows.map(row => ({ ...row, id: Number(row.id) })), rows.map(row => ({ ...row, amount: Object.is(row.amount, -0) ? 0 : row.amount, level: row.level ?? null })),
      'every value read back as sent (a missing level is NULL; the string "\\N" is not)')
  })

  await t.test('a value PostgreSQL refuses, mid-stream: 400 naming the row', async t => {
    await db.query('TRUNCATE items')
    // 1e30 is an integer to JSON Schema, but not a bigint.
    const body = rowsBody(120000, index => index === 76543 ? { ...plainRow(index), id: 1e30 } : plainRow(index))
    const { status, answer } = await post(importUrl, body)
    t.equal(status, 400)
    t.equal(answer.error?.code, 'ERR_IMPORT_REFUSED')
    t.match(answer.error?.message, /^Row 76543 \(column id\) was refused by PostgreSQL: .*bigint.*"1e\+30" \(SQLSTATE 22\w{3}\)$/)
    t.equal(answer.committed, 50000)
    t.equal(await tableCount(), 50000)
    // NUL cannot be stored in a text column.
    const small = await post(importUrl, JSON.stringify([plainRow(0), { ...plainRow(1), name: 'a\u0000b' }]))
    t.equal(small.status, 400)
    t.match(small.answer.error?.message, /^Row 1 was refused by PostgreSQL: invalid byte sequence .*0x00/)
    t.equal(small.answer.committed, 0)
    t.equal(await tableCount(), 50000)
  })

  await t.test('malformed JSON, streamed or parsed at once, answers in the same shape', async t => {
    const before = await tableCount()
    const text = '[{"id":1,"name":"a","amount":1},{"id":2,"name":'
    for (const body of [Readable.from([Buffer.from(text)]), text]) {
      const { status, answer } = await post(importUrl, body)
      t.equal(status, 400)
      t.equal(answer.error?.code, 'FST_NEXURE_INVALID_JSON')
      t.equal(answer.committed, 0)
    }
    t.equal(await tableCount(), before)
  })

  await t.test('a slow database holds the client back: COPY waits on a lock, the body stops', async t => {
    await db.query('TRUNCATE items')
    const rows = 600000 // ~40 MB
    const locker = new pg.Client({ database })
    await locker.connect()
    t.teardown(() => locker.end())
    // SHARE mode lets GET /count read but makes COPY (ROW EXCLUSIVE) wait.
    await locker.query('BEGIN')
    await locker.query('LOCK TABLE items IN SHARE MODE')
    const body = rowsBody(rows, plainRow)
    const answered = post(importUrl, body)
    let last = -1
    let steady = 0
    while (steady < 5) {
      await sleep(200)
      steady = body.pulled() === last ? steady + 1 : 0
      last = body.pulled()
    }
    const total = rows * Buffer.byteLength(JSON.stringify(plainRow(rows / 2)))
    t.ok(last < total / 4, `the client stopped after ${(last / 1e6).toFixed(1)} MB of ~${(total / 1e6).toFixed(0)} MB (socket buffers and a few chunks)`)
    t.equal((await getJson<{ count: number }>(`${server.url}/count`)).count, 0, 'nothing is in the table yet')
    await locker.query('COMMIT')
    const { status, answer } = await answered
    t.equal(status, 200)
    t.same(answer, { inserted: rows, batches: rows / 1000 }, 'once the lock goes, the rest of the body flows')
    t.equal(await tableCount(), rows)
  })

  await t.test('a client that goes away mid-body: its COPY is rolled back, the connection is freed', async t => {
    await db.query('TRUNCATE items')
    const controller = new AbortController()
    const body = rowsBody(1_000_000, plainRow)
    const answered = request(importUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: controller.signal })
    t.ok(await eventually(async () => body.pulled() > 8e6, 20_000), 'the body is streaming')
    controller.abort()
    await t.rejects(answered)
    const busy = async (): Promise<number> => Number((await db.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'nexure-bulk-import' AND state <> 'idle'")).rows[0]?.n)
    t.ok(await eventually(async () => await busy() === 0, 10_000), 'no COPY is left running')
    t.equal(await tableCount() % 50000, 0, 'only whole COPYs are committed')
    const { status, answer } = await post(importUrl, JSON.stringify([plainRow(1)]))
    t.equal(status, 200, 'the server goes on importing')
    t.same(answer, { inserted: 1, batches: 1 })
  })

  await stop(t, server)
})

