// Parse benchmark: how fast, and in how much memory, can a process turn a large JSON array (or
// NDJSON body) into items? On the same data, in one run:
//   floor            JSON.parse of the same array cut into ~32 KiB pieces at element boundaries
//                    (each wrapped in [ ]), the pieces cut beforehand and not timed: the cost of
//                    decoding the text and building the objects, which every engine pays
//   json-parse       the whole body in one buffer, toString, JSON.parse (what buffering does)
//   stream-json      stream-json 3's parser -> streamArray, counting items (a JS tokenizer)
//   nexure (pool)    JsonArrayScanner fed 64 KiB chunks, carry-over buffers from a BufferPool
//   nexure (no pool) the same with `pool: null`
//   nexure filter    FilterEngine with `filter: /^\d+$/` (the same items, selected by path
//                    anywhere: stream-json's tokenizer behind nexure's byte mirror)
// and for NDJSON: JSON.parse of every line of the whole text vs NdjsonSplitter.
//
// Every measurement runs in a fresh child process (so one approach's heap never pollutes the
// next one's RSS), several times; the table shows medians. Each child measures twice: its first
// pass (cold: the JIT has seen none of the code, as on a server's first request) and, after
// --warmups unmeasured passes over the same data, one more (warm: a long-running server's steady
// state). MB/s is by wall-clock time; MB/CPU-s
// divides by the process's CPU time, which a busy machine disturbs less. Peak RSS is the kernel's high-water
// mark for the child (VmHWM, reset before the warm pass; getrusage maxRSS where /proc is
// missing), which catches the peak inside one synchronous JSON.parse call that a timer-based
// sampler would miss; "idle" is the child's RSS before it reads anything. Data are generated into a temp directory at start and removed at the end.
//
//   npm run build && node dist/benchmark/parse.js --sizes 5MB,50MB --runs 3
//   flags: --sizes 5MB,50MB,500MB  --runs 3  --warmups 2  --ndjson-sizes 50MB  --stream-json-limit 200 (seconds)

import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { PerformanceObserver } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { BufferPool, FilterEngine, JsonArrayScanner, NdjsonSplitter } from 'nexure'
import { integerFlag } from './units.js'

const CHUNK = 64 * 1024
const MB = 1024 * 1024

type Approach = 'floor' | 'json-parse' | 'stream-json' | 'nexure-pool' | 'nexure-no-pool' | 'nexure-filter' | 'ndjson-json-parse' | 'ndjson-nexure'
const ARRAY_APPROACHES: Approach[] = ['floor', 'json-parse', 'stream-json', 'nexure-pool', 'nexure-no-pool', 'nexure-filter']
/** Approaches at a JS tokenizer's pace: skipped at sizes that would take longer than --stream-json-limit. */
const SLOW: Approach[] = ['stream-json', 'nexure-filter']
const NDJSON_APPROACHES: Approach[] = ['ndjson-json-parse', 'ndjson-nexure']
const LABEL: Record<Approach, string> = {
  floor: 'floor: JSON.parse of ~32 KiB pieces cut beforehand',
  'json-parse': 'JSON.parse (whole buffer)',
  'stream-json': 'stream-json (parser -> streamArray)',
  'nexure-pool': 'nexure JsonArrayScanner (pool)',
  'nexure-no-pool': 'nexure JsonArrayScanner (pool: null)',
  'nexure-filter': 'nexure FilterEngine (filter: /^\\d+$/)',
  'ndjson-json-parse': 'JSON.parse per line (whole text)',
  'ndjson-nexure': 'nexure NdjsonSplitter (pool)'
}

interface Measurement {
  items: number
  bytes: number
  ms: number
  /** User + system CPU time of the whole process (GC threads included) during the work. */
  cpuMs: number
  idleRssBytes: number
  peakRssBytes: number
  gcMs: number
  gcCount: number
}

/** One child process: its first pass, and one pass after the warm-ups. */
interface ColdWarm {
  cold: Measurement
  warm: Measurement
}

interface PhaseFigures {
  mbPerSecond: number
  mbPerCpuSecond: number
  peakRssMB: number
  gcMs: number
  ratioVsJsonParse: number
  /** This MB/s over the floor's in the same phase; absent where there is no floor (NDJSON). */
  ratioVsFloor?: number
}

interface Row {
  format: 'json' | 'ndjson'
  size: string
  bytes: number
  approach: Approach
  runs: number
  skipped?: string
  cold?: PhaseFigures
  warm?: PhaseFigures
  idleRssMB?: number
  all?: ColdWarm[]
}

// ---------------------------------------------------------------------------------------------
// Child: one approach over one file, then report a Measurement on stdout.

function readChunks (file: string, onChunk: (chunk: Buffer) => void): number {
  const fd = fs.openSync(file, 'r')
  let total = 0
  try {
    for (;;) {
      // A fresh buffer per read, as a socket hands out; the scanner must not keep it.
      const chunk = Buffer.allocUnsafe(CHUNK)
      const read = fs.readSync(fd, chunk, 0, CHUNK, null)
      if (read === 0) break
      total += read
      onChunk(read === CHUNK ? chunk : chunk.subarray(0, read))
    }
  } finally {
    fs.closeSync(fd)
  }
  return total
}

async function runStreamJson (file: string): Promise<number> {
  const { streamArray } = await import('stream-json/streamers/stream-array.js')
  return await new Promise<number>((resolve, reject) => {
    let items = 0
    const pipeline = streamArray.withParserAsStream()
    pipeline.on('data', () => { items++ })
    pipeline.on('end', () => resolve(items))
    pipeline.on('error', reject)
    const source = fs.createReadStream(file, { highWaterMark: CHUNK })
    source.on('error', reject)
    source.pipe(pipeline)
  })
}

const PIECE_BYTES = 32 * 1024

/**
 * The floor's input: the array's elements in pieces of about PIECE_BYTES, cut at top-level commas
 * and each wrapped in `[ ]`, so that JSON.parse of each piece yields whole elements. A plain byte
 * walk (strings, escapes, depth), run before the clock starts.
 */
function floorPieces (bytes: Buffer): Buffer[] {
  const pieces: Buffer[] = []
  const open = Buffer.from('[')
  const close = Buffer.from(']')
  const piece = (from: number, to: number): void => { pieces.push(Buffer.concat([open, bytes.subarray(from, to), close])) }
  let depth = 0
  let inString = false
  let escaped = false
  let start = 0
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!
    if (inString) {
      if (escaped) escaped = false
      else if (byte === 0x5c) escaped = true
      else if (byte === 0x22) inString = false
    } else if (byte === 0x22) {
      inString = true
    } else if (byte === 0x5b || byte === 0x7b) {
      if (depth === 0) start = i + 1
      depth++
    } else if (byte === 0x5d || byte === 0x7d) {
      depth--
      if (depth === 0 && i > start) piece(start, i)
    } else if (byte === 0x2c && depth === 1 && i - start >= PIECE_BYTES) {
      piece(start, i)
      start = i + 1
    }
  }
  return pieces
}

/** Prepared before any pass and not timed: the floor's pieces. */
interface Prepared {
  pieces: Buffer[] | null
}

function prepare (approach: Approach, file: string): Prepared {
  return { pieces: approach === 'floor' ? floorPieces(fs.readFileSync(file)) : null }
}

function readHighWaterMark (): number | null {
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))
    return match === null ? null : Number(match[1]) * 1024
  } catch {
    return null
  }
}

function resetHighWaterMark (): void {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5')
  } catch {}
}

async function measure (approach: Approach, file: string, prepared: Prepared): Promise<Measurement> {
  let gcMs = 0
  let gcCount = 0
  const observer = new PerformanceObserver(list => {
    for (const entry of list.getEntries()) {
      gcMs += entry.duration
      gcCount++
    }
  })
  observer.observe({ entryTypes: ['gc'] })
  resetHighWaterMark()
  const idleRssBytes = process.memoryUsage().rss
  const bytes = fs.statSync(file).size
  let items = 0
  const count = (batch: unknown[]): void => { items += batch.length }
  const cpuBefore = process.cpuUsage()
  const started = process.hrtime.bigint()
  switch (approach) {
    case 'floor':
      for (const piece of prepared.pieces!) items += (JSON.parse(piece.toString('utf8')) as unknown[]).length
      break
    case 'json-parse':
    case 'ndjson-json-parse': {
      const text = fs.readFileSync(file).toString('utf8')
      if (approach === 'json-parse') {
        items = (JSON.parse(text) as unknown[]).length
      } else {
        for (const line of text.split('\n')) {
          if (line.trim() !== '') {
            JSON.parse(line)
            items++
          }
        }
      }
      break
    }
    case 'stream-json':
      items = await runStreamJson(file)
      break
    case 'nexure-pool':
    case 'nexure-no-pool': {
      const scanner = new JsonArrayScanner({ pool: approach === 'nexure-pool' ? new BufferPool() : null }, count)
      readChunks(file, chunk => scanner.write(chunk))
      scanner.end()
      break
    }
    case 'nexure-filter': {
      const engine = new FilterEngine({ pool: new BufferPool(), filter: /^\d+$/ }, count)
      readChunks(file, chunk => engine.write(chunk))
      engine.end()
      break
    }
    case 'ndjson-nexure': {
      const splitter = new NdjsonSplitter({ pool: new BufferPool() }, count)
      readChunks(file, chunk => splitter.write(chunk))
      splitter.end()
      break
    }
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  const cpu = process.cpuUsage(cpuBefore)
  const cpuMs = (cpu.user + cpu.system) / 1000
  // GC entries are delivered asynchronously.
  await new Promise(resolve => setTimeout(resolve, 100))
  observer.disconnect()
  const peakRssBytes = readHighWaterMark() ?? process.resourceUsage().maxRSS * 1024
  return { items, bytes, ms, cpuMs, idleRssBytes, peakRssBytes, gcMs, gcCount }
}

/** The child's work: a cold pass, `warmups` unmeasured passes, a warm pass. */
async function coldAndWarm (approach: Approach, file: string, warmups: number): Promise<ColdWarm> {
  const prepared = prepare(approach, file)
  const cold = await measure(approach, file, prepared)
  for (let i = 0; i < warmups; i++) await measure(approach, file, prepared)
  const warm = await measure(approach, file, prepared)
  return { cold, warm }
}

// ---------------------------------------------------------------------------------------------
// Parent: data, children, table.

function parseSize (text: string): number {
  const match = /^(\d+(?:\.\d+)?)(KB|MB|GB)?$/i.exec(text.trim())
  if (match === null) throw new Error(`not a size: ${text} (expected e.g. 5MB)`)
  const unit = (match[2] ?? '').toUpperCase()
  const scale = unit === 'GB' ? 1024 * MB : unit === 'MB' ? MB : unit === 'KB' ? 1024 : 1
  return Math.round(Number(match[1]) * scale)
}

const HELP = `Usage: npm run bench:parse -- [options]

  --sizes LIST              JSON array sizes, e.g. 5MB,50MB,500MB (default 5MB,50MB)
  --ndjson-sizes LIST       NDJSON sizes (default 50MB)
  --runs N                  fresh child processes per size and approach (default 3)
  --warmups N               unmeasured passes between the cold and the warm one (default 2)
  --stream-json-limit S     skip the JS-tokenizer approaches where their estimate is over S
                            seconds (default 200)
  -h, --help                this text
`

interface ParseSettings {
  sizes: string[]
  ndjsonSizes: string[]
  runs: number
  warmups: number
  streamJsonLimitSeconds: number
}

/** The command line, checked: an unknown flag or a value that is not a count is an error, not a default. */
function readSettings (argv: string[]): ParseSettings | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      sizes: { type: 'string', default: '5MB,50MB' },
      'ndjson-sizes': { type: 'string', default: '50MB' },
      runs: { type: 'string', default: '3' },
      warmups: { type: 'string', default: '2' },
      'stream-json-limit': { type: 'string', default: '200' },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  if (values.help) return null
  const sizes = (text: string): string[] => {
    const list = text.split(',').filter(Boolean)
    for (const size of list) parseSize(size)
    return list
  }
  return {
    sizes: sizes(values.sizes),
    ndjsonSizes: sizes(values['ndjson-sizes']),
    runs: integerFlag('runs', values.runs, 1),
    warmups: integerFlag('warmups', values.warmups, 1),
    streamJsonLimitSeconds: integerFlag('stream-json-limit', values['stream-json-limit'], 0)
  }
}

// Deterministic records with some multi-byte text; written in ~1 MB pieces.
function record (k: number): string {
  return JSON.stringify({
    id: k,
    name: k % 10 === 0 ? `Zoë Müller-${k} 😀` : `User ${k}`,
    email: `user${k}@example.com`,
    tags: k % 3 === 0 ? ['alpha', 'beta', 'δέλτα'] : ['alpha', 'gamma'],
    score: Math.round(((k * 7919) % 10000) * 0.37 * 100) / 100,
    active: k % 2 === 0
  })
}

function generate (file: string, bytes: number, format: 'json' | 'ndjson'): void {
  const fd = fs.openSync(file, 'w')
  let written = 0
  let k = 0
  let piece = format === 'json' ? '[' : ''
  let pieceBytes = piece.length
  const separator = format === 'json' ? ',' : '\n'
  const closing = format === 'json' ? ']' : '\n'
  try {
    while (written + pieceBytes + 200 < bytes) {
      const next = (k === 0 && format === 'json' ? '' : separator) + record(k++)
      piece += next
      pieceBytes += Buffer.byteLength(next)
      if (pieceBytes >= MB) {
        written += fs.writeSync(fd, piece)
        piece = ''
        pieceBytes = 0
      }
    }
    fs.writeSync(fd, piece + closing)
  } finally {
    fs.closeSync(fd)
  }
}

function runChild (approach: Approach, file: string, warmups: number): ColdWarm {
  const output = execFileSync(process.execPath, ['--max-old-space-size=8192', fileURLToPath(import.meta.url), '--child', approach, file, String(warmups)], {
    encoding: 'utf8',
    maxBuffer: 1024 * 1024,
    stdio: ['ignore', 'pipe', 'inherit']
  })
  return JSON.parse(output.trim().split('\n').pop()!) as ColdWarm
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

function table (rows: Row[]): string {
  const header = ['format', 'size', 'approach', 'runs', 'cold MB/s', 'warm MB/s', 'cold vs floor', 'warm vs floor', 'vs JSON.parse cold / warm',
    'warm MB/CPU-s', 'peak RSS MB cold / warm', 'idle RSS MB', 'GC ms cold / warm']
  const x = (ratio: number | undefined): string => ratio === undefined ? '—' : `${ratio.toFixed(2)}x`
  const lines = rows.map(row => {
    if (row.skipped !== undefined || row.cold === undefined || row.warm === undefined) {
      return [row.format, row.size, LABEL[row.approach], '0', `skipped: ${row.skipped ?? ''}`, '', '', '', '', '', '', '', '']
    }
    const { cold, warm } = row
    return [row.format, row.size, LABEL[row.approach], String(row.runs), cold.mbPerSecond.toFixed(1), warm.mbPerSecond.toFixed(1),
      x(cold.ratioVsFloor), x(warm.ratioVsFloor), `${x(cold.ratioVsJsonParse)} / ${x(warm.ratioVsJsonParse)}`, warm.mbPerCpuSecond.toFixed(1),
      `${cold.peakRssMB.toFixed(0)} / ${warm.peakRssMB.toFixed(0)}`, row.idleRssMB!.toFixed(0), `${cold.gcMs.toFixed(0)} / ${warm.gcMs.toFixed(0)}`]
  })
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map(line => line[column]!.length)))
  const format = (cells: string[]): string => '| ' + cells.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ') + ' |'
  return [format(header), '|' + widths.map(width => '-'.repeat(width + 2)).join('|') + '|', ...lines.map(format)].join('\n')
}

async function main (): Promise<void> {
  if (process.argv[2] === '--child') {
    const result = await coldAndWarm(process.argv[3] as Approach, process.argv[4]!, Number(process.argv[5] ?? '2'))
    process.stdout.write(JSON.stringify(result) + '\n')
    return
  }
  const settings = readSettings(process.argv.slice(2))
  if (settings === null) {
    process.stdout.write(HELP)
    return
  }
  const { sizes, ndjsonSizes, runs, warmups, streamJsonLimitSeconds } = settings
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nexure-parse-bench-'))
  const cleanup = (): void => fs.rmSync(dir, { recursive: true, force: true })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      cleanup()
      process.exit(signal === 'SIGINT' ? 130 : 143)
    })
  }
  const rows: Row[] = []
  const slowRates = new Map<Approach, number>()
  console.log(`node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg()[0]!.toFixed(2)}; ${runs} run(s) per approach, each in a fresh process: ` +
    `a cold pass, ${warmups} unmeasured warm-up pass(es), a warm pass; approaches alternate`)
  try {
    const plan: Array<{ format: 'json' | 'ndjson', size: string, approaches: Approach[] }> = [
      ...sizes.map(size => ({ format: 'json' as const, size, approaches: ARRAY_APPROACHES })),
      ...ndjsonSizes.map(size => ({ format: 'ndjson' as const, size, approaches: NDJSON_APPROACHES }))
    ]
    for (const { format, size, approaches } of plan) {
      const bytes = parseSize(size)
      const file = path.join(dir, `${format}-${size}.${format}`)
      generate(file, bytes, format)
      const fileBytes = fs.statSync(file).size
      const results = new Map<Approach, ColdWarm[]>(approaches.map(approach => [approach, []]))
      const skipped = new Map<Approach, string>()
      for (const slow of SLOW) {
        const rate = slowRates.get(slow) ?? 0
        if (!approaches.includes(slow) || rate <= 0) continue
        const estimate = (fileBytes / MB / rate) * runs * (warmups + 2)
        if (estimate > streamJsonLimitSeconds) skipped.set(slow, `~${Math.round(estimate)} s for ${runs} run(s) of ${warmups + 2} passes at ${rate.toFixed(0)} MB/s`)
      }
      // Round-robin over the approaches, so a slow phase of the machine hits all of them alike.
      for (let run = 0; run < runs; run++) {
        for (const approach of approaches) {
          if (skipped.has(approach)) continue
          const measurement = runChild(approach, file, warmups)
          results.get(approach)!.push(measurement)
          const rate = (m: Measurement): string => (fileBytes / MB / (m.ms / 1000)).toFixed(1)
          process.stderr.write(`${format} ${size} ${approach} run ${run + 1}: cold ${rate(measurement.cold)} MB/s, warm ${rate(measurement.warm)} MB/s, ${measurement.cold.items} items\n`)
        }
      }
      const rateOf = (m: Measurement): number => fileBytes / MB / (m.ms / 1000)
      const medianRate = (approach: Approach, phase: 'cold' | 'warm'): number | undefined => {
        const all = results.get(approach)
        return all === undefined || all.length === 0 ? undefined : median(all.map(m => rateOf(m[phase])))
      }
      const baseline = format === 'json' ? 'json-parse' : 'ndjson-json-parse'
      for (const approach of approaches) {
        const reason = skipped.get(approach)
        if (reason !== undefined) {
          rows.push({ format, size, bytes: fileBytes, approach, runs: 0, skipped: reason })
          continue
        }
        const all = results.get(approach)!
        const counts = new Set(all.flatMap(m => [m.cold.items, m.warm.items]))
        if (counts.size !== 1) throw new Error(`${approach} counted different numbers of items: ${[...counts].join(', ')}`)
        const figures = (phase: 'cold' | 'warm'): PhaseFigures => {
          const rate = medianRate(approach, phase)!
          const floor = medianRate('floor', phase)
          return {
            mbPerSecond: rate,
            mbPerCpuSecond: median(all.map(m => fileBytes / MB / (m[phase].cpuMs / 1000))),
            peakRssMB: median(all.map(m => m[phase].peakRssBytes / MB)),
            gcMs: median(all.map(m => m[phase].gcMs)),
            ratioVsJsonParse: rate / medianRate(baseline, phase)!,
            ...(floor === undefined ? {} : { ratioVsFloor: rate / floor })
          }
        }
        if (SLOW.includes(approach)) slowRates.set(approach, medianRate(approach, 'cold')!)
        rows.push({
          format,
          size,
          bytes: fileBytes,
          approach,
          runs: all.length,
          cold: figures('cold'),
          warm: figures('warm'),
          idleRssMB: median(all.map(m => m.cold.idleRssBytes / MB)),
          all
        })
      }
      const itemCounts = new Set(rows.filter(row => row.size === size && row.format === format && row.all !== undefined).map(row => row.all![0]!.cold.items))
      if (itemCounts.size !== 1) throw new Error(`approaches disagree on the item count at ${format} ${size}: ${[...itemCounts].join(', ')}`)
      fs.rmSync(file)
    }
  } finally {
    cleanup()
  }
  const printed = table(rows)
  console.log(printed)
  const resultsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../benchmark/results')
  fs.mkdirSync(resultsDir, { recursive: true })
  const out = path.join(resultsDir, 'parse.json')
  const date = new Date().toISOString()
  fs.writeFileSync(out, JSON.stringify({ node: process.version, cpus: os.cpus().length, loadAverage: os.loadavg()[0], runs, warmups, date, rows }, null, 2) + '\n')
  fs.writeFileSync(path.join(resultsDir, 'parse.md'), `${printed}\n\nnode ${process.version}, ${os.cpus().length} CPUs, ${date}; \`node dist/benchmark/parse.js ${process.argv.slice(2).join(' ')}\`\n`)
  console.log(`results written to ${path.relative(process.cwd(), out)}`)
}

try {
  await main()
} catch (error) {
  process.stderr.write(`nexure bench:parse: ${(error as Error).message}\n`)
  process.exitCode = 2
}
