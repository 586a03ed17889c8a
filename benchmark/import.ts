import { mkdirSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import Database from 'better-sqlite3'
import pg from 'pg'
import { measureInFreshServer, oneLine, type Outcome, type RunResult } from './measure.js'
import { describeMachine, loadWarning, machine } from './results.js'
import { sendImport } from './send-import.js'
import { IMPORT_APPROACHES, IMPORT_LABELS, IMPORT_ROUTE, IMPORT_TABLE, isImportApproach, type ImportApproach } from './import-approaches.js'
import { formatSize, mb, median, parseSize } from './units.js'

// `npm run bench:import`: a JSON array of rows into a database, three ways: nexure into
// PostgreSQL with COPY (examples/bulk-import-postgres.ts), Fastify's default parser with
// multi-row INSERTs into PostgreSQL, and nexure into SQLite (examples/bulk-import-sqlite.ts).
// Each run is a fresh server process fed by a client process over loopback; the approaches
// alternate run by run (A B C A B C) so that a change in the machine's load hits them alike.
// Rows/s counts the rows found in the table afterwards; peak RSS is the server process's.

const HELP = `Usage: npm run bench:import -- [options]

  --sizes LIST              body sizes (default: 100MB; KB = 1024 bytes; the rows are ~60 bytes)
  --runs N                  runs per size and approach (default: 3 up to 100MB, 1 above)
  --approaches LIST         nexure-postgres,standard-postgres,nexure-sqlite (the default)
  --insert-rows N           rows per INSERT statement for standard-postgres (default: 1000)
  --max-old-space-size MB   V8 heap limit of the server processes (default: Node's own)
  --out DIR                 where to write bench-import-<date>.json/.md (default: benchmark/results)
  -h, --help                this text

PostgreSQL: the server in the PG* environment variables (a database of its own is created for
the run and dropped after it); \`.ci/postgres.sh npm run bench:import\` starts a throwaway one.
`

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const WARMUP_BYTES = 64 * 1024

interface ImportCell {
  approach: ImportApproach
  sizeBytes: number
  runsPlanned: number
  runs: Array<RunResult & { rows: number }>
  failure: string | null
  failureDetail: string | null
  median: { ms: number, rssBytes: number, heapBytes: number, rowsPerSecond: number } | null
}

function progress (line: string): void {
  process.stderr.write(line + '\n')
}

function ratio (value: number, base: number): string {
  const r = value / base
  return r >= 10 ? `${r.toFixed(0)}x` : `${r.toFixed(2)}x`
}

function markdownTable (cells: ImportCell[], sizes: number[]): string {
  const lines = [
    '| Size | Approach | Rows | Median time (s) | Rows/s | MB/s | Peak RSS (MB) | vs Standard |',
    '|---|---|--:|--:|--:|--:|--:|---|'
  ]
  for (const size of sizes) {
    const row = cells.filter(c => c.sizeBytes === size)
    const standard = row.find(c => c.approach === 'standard-postgres')
    for (const cell of row) {
      const label = IMPORT_LABELS[cell.approach]
      if (cell.median === null) {
        lines.push(`| ${formatSize(size)} | ${label} | — | ${cell.failure ?? 'failed'} | — | — | — | — |`)
        continue
      }
      const versus = cell === standard
        ? 'baseline'
        : standard === undefined ? 'not measured' : standard.median === null
          ? `Standard: ${standard.failure ?? 'failed'}`
          : `rows/s ${ratio(cell.median.rowsPerSecond, standard.median.rowsPerSecond)}, RSS ${ratio(cell.median.rssBytes, standard.median.rssBytes)}`
      const runs = cell.runs.length === 1 ? ' (1 run)' : ''
      const rows = cell.runs[0]?.rows ?? 0
      const seconds = cell.median.ms / 1000
      lines.push(`| ${formatSize(size)} | ${label} | ${rows.toLocaleString('en-US')} | ${seconds.toFixed(2)}${runs} | ${Math.round(cell.median.rowsPerSecond).toLocaleString('en-US')} | ${(size / 1024 ** 2 / seconds).toFixed(1)} | ${mb(cell.median.rssBytes)} | ${versus} |`)
    }
  }
  return lines.join('\n') + '\n'
}

/** Where the approaches write, made fresh for each run. */
class Databases {
  readonly #admin: pg.Client | null
  readonly #database: string
  readonly #sqliteDir: string
  #sqliteFile = ''
  #table: pg.Client | null = null

  private constructor (admin: pg.Client | null, database: string, sqliteDir: string) {
    this.#admin = admin
    this.#database = database
    this.#sqliteDir = sqliteDir
  }

  static async open (postgres: boolean): Promise<Databases> {
    const sqliteDir = await mkdtemp(path.join(tmpdir(), 'nexure-bench-import-'))
    const database = `nexure_bench_${process.pid}_${randomBytes(3).toString('hex')}`
    if (!postgres) return new Databases(null, database, sqliteDir)
    // The maintenance database when PGDATABASE is unset (pg would try one named after the user).
    const admin = new pg.Client({ connectionTimeoutMillis: 5000, database: process.env.PGDATABASE ?? 'postgres' })
    try {
      await admin.connect()
    } catch (error) {
      await rm(sqliteDir, { recursive: true, force: true })
      throw new Error(`no PostgreSQL server (${process.env.PGHOST === undefined ? 'PGHOST not set' : `PGHOST=${process.env.PGHOST}`}: ${(error as Error).message}); ` +
        'start a throwaway one with `.ci/postgres.sh npm run bench:import`, or leave the PostgreSQL approaches out')
    }
    await admin.query(`CREATE DATABASE ${database}`)
    return new Databases(admin, database, sqliteDir)
  }

  /** An empty table (or SQLite file) for the next run; the server process reads it from the environment. */
  async prepare (approach: ImportApproach): Promise<void> {
    if (approach === 'nexure-sqlite') {
      this.#sqliteFile = path.join(this.#sqliteDir, `run-${randomBytes(4).toString('hex')}.sqlite`)
      process.env.DB = this.#sqliteFile
      return
    }
    process.env.PGDATABASE = this.#database
    if (this.#table === null) {
      this.#table = new pg.Client({ database: this.#database })
      await this.#table.connect()
    }
    await this.#table.query(`DROP TABLE IF EXISTS ${IMPORT_TABLE}`)
  }

  /** How many rows the last run left in its table. */
  async count (approach: ImportApproach): Promise<number> {
    if (approach === 'nexure-sqlite') {
      const db = new Database(this.#sqliteFile, { readonly: true })
      try {
        return (db.prepare('SELECT count(*) AS n FROM items').get() as { n: number }).n
      } finally {
        db.close()
        await rm(this.#sqliteFile, { force: true })
        await rm(`${this.#sqliteFile}-wal`, { force: true })
        await rm(`${this.#sqliteFile}-shm`, { force: true })
      }
    }
    const result = await this.#table!.query<{ n: string }>(`SELECT count(*) AS n FROM ${IMPORT_TABLE}`)
    return Number(result.rows[0]?.n)
  }

  async close (): Promise<void> {
    await this.#table?.end()
    if (this.#admin !== null) {
      await this.#admin.query(`DROP DATABASE IF EXISTS ${this.#database} WITH (FORCE)`)
      await this.#admin.end()
    }
    await rm(this.#sqliteDir, { recursive: true, force: true })
  }
}

interface ImportSettings { maxOldSpaceSizeMB: number | null, insertRows: number }

/** One import in a fresh server process; the extra is the rows the measured request left in the table. */
async function importOnce (approach: ImportApproach, size: number, databases: Databases, settings: ImportSettings): Promise<Outcome<number>> {
  const timeoutMs = 120_000 + Math.ceil(size / (1024 ** 2)) * 1000
  await databases.prepare(approach)
  let warmRows = 0
  return measureInFreshServer({
    script: 'import-server.js',
    args: [approach, String(size + 1024), String(settings.insertRows)],
    maxOldSpaceSizeMB: settings.maxOldSpaceSizeMB,
    warmup: async baseUrl => {
      const result = await sendImport({ kind: 'import', url: `${baseUrl}${IMPORT_ROUTE}`, size: WARMUP_BYTES, timeoutMs })
      if (result.ok) warmRows = result.items
      return result
    },
    job: baseUrl => ({ kind: 'import', url: `${baseUrl}${IMPORT_ROUTE}`, size, timeoutMs }),
    after: async () => (await databases.count(approach)) - warmRows
  })
}

async function main (): Promise<number> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '100MB' },
      runs: { type: 'string' },
      approaches: { type: 'string', default: IMPORT_APPROACHES.join(',') },
      'insert-rows': { type: 'string', default: '1000' },
      'max-old-space-size': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  if (values.help === true) {
    process.stdout.write(HELP)
    return 0
  }
  const sizes = [...new Set((values.sizes ?? '').split(',').map(parseSize))].sort((a, b) => a - b)
  const approaches = (values.approaches ?? '').split(',').map(name => {
    if (!isImportApproach(name)) throw new Error(`unknown approach ${JSON.stringify(name)} (known: ${IMPORT_APPROACHES.join(', ')})`)
    return name
  })
  const runs = values.runs === undefined ? null : Number(values.runs)
  if (runs !== null && (!Number.isInteger(runs) || runs < 1 || runs > 100)) throw new Error('--runs must be an integer from 1 to 100')
  const runsFor = (size: number): number => runs ?? (size <= 100 * 1024 ** 2 ? 3 : 1)
  const insertRows = Number(values['insert-rows'])
  // 65,535 parameters per statement, four per row.
  if (!Number.isInteger(insertRows) || insertRows < 1 || insertRows > 16383) throw new Error('--insert-rows must be an integer from 1 to 16383 (PostgreSQL takes at most 65,535 parameters, four per row)')
  const maxOldSpaceSizeMB = values['max-old-space-size'] === undefined ? null : Number(values['max-old-space-size'])
  if (maxOldSpaceSizeMB !== null && (!Number.isInteger(maxOldSpaceSizeMB) || maxOldSpaceSizeMB < 16)) throw new Error('--max-old-space-size must be an integer number of MB, at least 16')
  const outDir = path.resolve(values.out ?? path.join(PACKAGE_ROOT, 'benchmark', 'results'))

  const started = performance.now()
  const date = new Date().toISOString()
  const host = machine()
  progress(`nexure import bench on ${describeMachine(host)}`)
  const busy = loadWarning(host)
  if (busy !== null) progress(busy)
  const databases = await Databases.open(approaches.some(a => a !== 'nexure-sqlite'))
  const cells: ImportCell[] = []
  let failed = false
  try {
    for (const size of sizes) {
      const row = approaches.map(approach => {
        const cell: ImportCell = { approach, sizeBytes: size, runsPlanned: runsFor(size), runs: [], failure: null, failureDetail: null, median: null }
        cells.push(cell)
        return cell
      })
      for (let run = 1; run <= runsFor(size); run++) {
        for (const cell of row) {
          if (cell.failure !== null) continue // the rest of a failed approach's runs are not attempted
          const outcome = await importOnce(cell.approach, size, databases, { maxOldSpaceSizeMB, insertRows })
          const tag = `${formatSize(size).padEnd(6)} ${IMPORT_LABELS[cell.approach].padEnd(30)} run ${run}/${cell.runsPlanned}`
          const elapsed = ((performance.now() - started) / 1000).toFixed(0)
          if (outcome.ok && outcome.extra > 0) {
            cell.runs.push({ ...outcome.run, rows: outcome.extra })
            progress(`${tag}: ${outcome.extra} rows in ${(outcome.run.ms / 1000).toFixed(2)} s, ${Math.round(outcome.extra / outcome.run.ms * 1000)} rows/s, RSS ${mb(outcome.run.rssBytes)} MB  (${elapsed} s)`)
            continue
          }
          cell.failure = outcome.ok ? 'no rows in the table' : outcome.failure
          cell.failureDetail = outcome.ok ? null : outcome.detail
          // Fastify's parser dying of a body too large for one string is the comparison's point.
          if (!(outcome.ok === false && outcome.crashed && cell.approach === 'standard-postgres')) failed = true
          progress(`${tag}: ${cell.failure}  (${elapsed} s)${outcome.ok ? '' : `\n    ${oneLine(outcome.detail, 300)}`}`)
        }
      }
      for (const cell of row) {
        if (cell.failure !== null || cell.runs.length === 0) continue
        if (cell.runs.some(r => r.rows !== cell.runs[0]!.rows)) {
          cell.failure = 'row counts differ between runs'
          failed = true
          continue
        }
        cell.median = {
          ms: median(cell.runs.map(r => r.ms)),
          rssBytes: median(cell.runs.map(r => r.rssBytes)),
          heapBytes: median(cell.runs.map(r => r.heapBytes)),
          rowsPerSecond: median(cell.runs.map(r => r.rows / r.ms * 1000))
        }
      }
    }
  } finally {
    await databases.close()
  }

  const command = ['npm run bench:import', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' ')
  const table = markdownTable(cells, sizes)
  const report = { tool: 'nexure-bench-import', version: 1, date, command, machine: host, settings: { sizes, approaches, insertRows, maxOldSpaceSizeMB, warmupBytes: WARMUP_BYTES }, cells, durationMs: performance.now() - started, ok: !failed }
  const stamp = date.replace(/[:.]/g, '-')
  mkdirSync(outDir, { recursive: true })
  const jsonPath = path.join(outDir, `bench-import-${stamp}.json`)
  writeFileSync(jsonPath, JSON.stringify(report, null, 2) + '\n')
  writeFileSync(path.join(outDir, `bench-import-${stamp}.md`), `${table}\n${describeMachine(host)}, ${date}\n\`${command}\`\n`)
  process.stdout.write(`\n${table}\n${describeMachine(host)}; ${date}; ${(report.durationMs / 1000).toFixed(0)} s\nresults: ${jsonPath}\n`)
  return failed ? 1 : 0
}

try {
  process.exitCode = await main()
} catch (error) {
  process.stderr.write(`nexure bench:import: ${(error as Error).message}\n`)
  process.exitCode = 2
}
