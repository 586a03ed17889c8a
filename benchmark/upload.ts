import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { measureInFreshServer, oneLine, type Outcome, type RunResult } from './measure.js'
import { describeMachine, loadWarning, machine } from './results.js'
import { startLocalS3 } from './s3-server.js'
import { sendUpload } from './send-upload.js'
import { BENCH_BUCKET, isUploadApproach, UPLOAD_APPROACHES, UPLOAD_LABELS, UPLOAD_ROUTE, type UploadApproach } from './upload-approaches.js'
import { formatSize, mb, median, parseSize } from './units.js'

// `npm run bench:upload`: nexure's streamUpload (to disk, and to S3 with s3Storage) vs
// @fastify/multipart's saveRequestFiles vs reading the file into memory with toBuffer, each in a
// fresh server process fed by a client process over loopback: time, peak server RSS, and the
// files left afterwards. The S3 rows go to s3rver, an S3-compatible server that this process
// starts on loopback (it writes every object to its data directory under --temp-root).

const HELP = `Usage: npm run bench:upload -- [options]

  --sizes LIST              file sizes (default: 50MB,1GB; KB = 1024 bytes)
  --runs N                  runs per size and approach (default: 3 up to 50MB, 1 above)
  --approaches LIST         nexure,nexure-s3,save-request-files,to-buffer (the default)
  --max-old-space-size MB   V8 heap limit of the server processes (default: Node's own)
  --temp-root DIR           where each run's temp dir is made (default: the OS temp dir)
  --no-abort                skip the aborted upload (by default one run per size and approach
                            where the client goes away halfway through the file)
  --out DIR                 where to write bench-upload-<date>.json/.md (default: benchmark/results)
  -h, --help                this text
`

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const WARMUP_BYTES = 1024 * 1024
// Cleanup runs after the response is sent (or after the connection closed, for an aborted
// upload); give it this long before looking.
const SETTLE_MS = 500
const S3_SETTLE_MS = 10_000

interface LeftOnDisk {
  files: number
  bytes: number
  /** The most files seen in the temp dir while the request ran: what there was to clean up. */
  seenDuringRequest: number
}

interface UploadCell {
  approach: UploadApproach
  sizeBytes: number
  runsPlanned: number
  runs: Array<RunResult & { left: LeftOnDisk }>
  failure: string | null
  failureDetail: string | null
  median: { ms: number, rssBytes: number, heapBytes: number } | null
  /** The most files (and their bytes) any run left in its temp dir after the response. */
  leftOnDisk: LeftOnDisk | null
  /** What one upload cut off halfway by the client left in its temp dir; null if not measured. */
  leftAfterAbort: LeftOnDisk | null
  abortFailure: string | null
}

async function filesUnder (dir: string): Promise<{ files: number, bytes: number }> {
  const found = { files: 0, bytes: 0 }
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue
    found.files++
    found.bytes += (await stat(path.join(entry.parentPath ?? entry.path, entry.name))).size
  }
  return found
}

function progress (line: string): void {
  process.stderr.write(line + '\n')
}

function describeLeft (left: LeftOnDisk | null): string {
  if (left === null) return '—'
  const written = left.seenDuringRequest === 0 ? 'none written' : `of ${left.seenDuringRequest} written`
  return left.files === 0 ? `0 (${written})` : `${left.files}, ${mb(left.bytes)} MB (${written})`
}

function markdownTable (cells: UploadCell[], sizes: number[]): string {
  const lines = [
    '| Size | Approach | Median time (ms) | Throughput (MB/s) | Peak RSS (MB) | Files left after the response | Files left after an aborted upload |',
    '|---|---|--:|--:|--:|---|---|'
  ]
  for (const size of sizes) {
    for (const cell of cells.filter(c => c.sizeBytes === size)) {
      const label = UPLOAD_LABELS[cell.approach]
      const aborted = cell.abortFailure ?? describeLeft(cell.leftAfterAbort)
      if (cell.median === null) {
        lines.push(`| ${formatSize(size)} | ${label} | ${cell.failure ?? 'failed'} | — | — | — | ${aborted} |`)
        continue
      }
      const left = describeLeft(cell.leftOnDisk)
      const runs = cell.runs.length === 1 ? ' (1 run)' : ''
      const throughput = (size / 1024 ** 2) / (cell.median.ms / 1000)
      lines.push(`| ${formatSize(size)} | ${label} | ${Math.round(cell.median.ms)}${runs} | ${throughput.toFixed(0)} | ${mb(cell.median.rssBytes)} | ${left} | ${aborted} |`)
    }
  }
  return lines.join('\n') + '\n'
}

interface UploadSettings {
  tempRoot: string
  maxOldSpaceSizeMB: number | null
  abort: boolean
  s3: BenchS3 | null
}

interface BenchS3 {
  endpoint: string
  /** The bucket's directory in s3rver's data directory: objects, and pending uploads in ._S3rver_uploads/. */
  bucketDir: string
  close: () => Promise<void>
}

/** s3rver on loopback with a fresh data directory and the benchmark's bucket. */
async function startS3 (tempRoot: string): Promise<BenchS3> {
  const server = await startLocalS3(tempRoot, [BENCH_BUCKET])
  return { endpoint: server.endpoint, bucketDir: path.join(server.dataDir, BENCH_BUCKET), close: server.close }
}

/** Objects and pending multipart uploads in the bucket; `empty` removes them all between runs. */
async function s3Contents (s3: BenchS3): Promise<{ objects: number, pending: number, bytes: number }> {
  const entries = await readdir(s3.bucketDir).catch(() => [] as string[])
  const objects = entries.filter(name => name.endsWith('._S3rver_object'))
  const pending = await readdir(path.join(s3.bucketDir, '._S3rver_uploads')).catch(() => [] as string[])
  let bytes = 0
  for (const name of objects) bytes += (await stat(path.join(s3.bucketDir, name))).size
  return { objects: objects.length, pending: pending.length, bytes }
}

// Synchronous: also called between the warm-up and the measured upload, whose leftovers are
// what the run counts.
function emptyBucket (s3: BenchS3): void {
  rmSync(s3.bucketDir, { recursive: true, force: true })
  mkdirSync(s3.bucketDir, { recursive: true })
}

/** One upload in a fresh server with its own temp dir; `abortAfterBytes` cuts it off there. */
async function uploadOnce (approach: UploadApproach, size: number, settings: UploadSettings, abortAfterBytes?: number): Promise<Outcome<LeftOnDisk>> {
  const timeoutMs = 120_000 + Math.ceil(size / (1024 ** 2)) * 1000
  const tempDir = await mkdtemp(path.join(settings.tempRoot, 'nexure-bench-upload-'))
  const s3 = approach === 'nexure-s3' ? settings.s3 : null
  if (approach === 'nexure-s3' && s3 === null) throw new Error('the nexure-s3 approach needs the S3 server')
  if (s3 !== null) emptyBucket(s3)
  // Watch the temp dir (for S3: the bucket's parts and objects) during the measured request:
  // "0 files left" means something only if files were there to clean up.
  let seen = 0
  let watcher: NodeJS.Timeout | undefined
  const watch = (): void => {
    watcher = setInterval(() => {
      filesUnder(s3?.bucketDir ?? tempDir).then(found => { seen = Math.max(seen, found.files) }, () => {})
    }, 25)
  }
  // Left for S3: pending multipart uploads, and after an aborted upload any object at all (the
  // one object of a successful upload is its destination, not a leftover).
  const leftInS3 = async (aborted: boolean): Promise<{ files: number, bytes: number }> => {
    const found = await s3Contents(s3!)
    return { files: found.pending + (aborted ? found.objects : 0), bytes: aborted ? found.bytes : 0 }
  }
  // Undoing an S3 upload waits for the parts in flight (seconds on a busy machine): give it up
  // to S3_SETTLE_MS before counting what is left.
  const settledInS3 = async (aborted: boolean): Promise<{ files: number, bytes: number }> => {
    const deadline = Date.now() + S3_SETTLE_MS
    for (;;) {
      const left = await leftInS3(aborted)
      if (left.files === 0 || Date.now() > deadline) return left
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }
  try {
    return await measureInFreshServer({
      script: 'upload-server.js',
      args: [approach, tempDir, String(size + 1024), ...(s3 === null ? [] : [s3.endpoint])],
      maxOldSpaceSizeMB: settings.maxOldSpaceSizeMB,
      warmup: baseUrl => sendUpload({ kind: 'upload', url: `${baseUrl}${UPLOAD_ROUTE}`, size: WARMUP_BYTES, timeoutMs }),
      job: baseUrl => {
        if (s3 !== null) emptyBucket(s3) // the warm-up's object is not this run's
        watch()
        return { kind: 'upload', url: `${baseUrl}${UPLOAD_ROUTE}`, size, timeoutMs, ...(abortAfterBytes === undefined ? {} : { abortAfterBytes }) }
      },
      after: async () => {
        clearInterval(watcher)
        await new Promise(resolve => setTimeout(resolve, SETTLE_MS))
        const left = s3 === null ? await filesUnder(tempDir) : await settledInS3(abortAfterBytes !== undefined)
        return { ...left, seenDuringRequest: seen }
      }
    })
  } finally {
    clearInterval(watcher)
    await rm(tempDir, { recursive: true, force: true })
  }
}

async function main (): Promise<number> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '50MB,1GB' },
      runs: { type: 'string' },
      approaches: { type: 'string', default: UPLOAD_APPROACHES.join(',') },
      'max-old-space-size': { type: 'string' },
      'temp-root': { type: 'string' },
      'no-abort': { type: 'boolean', default: false },
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
    if (!isUploadApproach(name)) throw new Error(`unknown approach ${JSON.stringify(name)} (known: ${UPLOAD_APPROACHES.join(', ')})`)
    return name
  })
  const runs = values.runs === undefined ? null : Number(values.runs)
  if (runs !== null && (!Number.isInteger(runs) || runs < 1 || runs > 100)) throw new Error('--runs must be an integer from 1 to 100')
  const runsFor = (size: number): number => runs ?? (size <= 50 * 1024 ** 2 ? 3 : 1)
  const maxOldSpaceSizeMB = values['max-old-space-size'] === undefined ? null : Number(values['max-old-space-size'])
  if (maxOldSpaceSizeMB !== null && (!Number.isInteger(maxOldSpaceSizeMB) || maxOldSpaceSizeMB < 16)) throw new Error('--max-old-space-size must be an integer number of MB, at least 16')
  const tempRoot = path.resolve(values['temp-root'] ?? tmpdir())
  const outDir = path.resolve(values.out ?? path.join(PACKAGE_ROOT, 'benchmark', 'results'))

  const started = performance.now()
  const date = new Date().toISOString()
  const host = machine()
  progress(`nexure upload bench, ${describeMachine(host)}`)
  const busy = loadWarning(host)
  if (busy !== null) progress(busy)
  progress(`sizes ${sizes.map(s => `${formatSize(s)} (${runsFor(s)} run${runsFor(s) === 1 ? '' : 's'})`).join(', ')}; temp dirs under ${tempRoot}`)

  const s3 = approaches.includes('nexure-s3') ? await startS3(tempRoot) : null
  const settings: UploadSettings = { tempRoot, maxOldSpaceSizeMB, abort: values['no-abort'] !== true, s3 }
  const cells: UploadCell[] = []
  let failed = false
  for (const size of sizes) {
    for (const approach of approaches) {
      const cell: UploadCell = { approach, sizeBytes: size, runsPlanned: runsFor(size), runs: [], failure: null, failureDetail: null, median: null, leftOnDisk: null, leftAfterAbort: null, abortFailure: null }
      cells.push(cell)
      for (let run = 1; run <= cell.runsPlanned; run++) {
        const outcome = await uploadOnce(approach, size, settings)
        const tag = `${formatSize(size).padEnd(6)} ${UPLOAD_LABELS[approach].padEnd(27)} run ${run}/${cell.runsPlanned}`
        const elapsed = ((performance.now() - started) / 1000).toFixed(0)
        if (outcome.ok) {
          cell.runs.push({ ...outcome.run, left: outcome.extra })
          progress(`${tag}: ${outcome.run.ms.toFixed(0)} ms, RSS ${mb(outcome.run.rssBytes)} MB, files left ${describeLeft(outcome.extra)}  (${elapsed} s)`)
          continue
        }
        cell.failure = outcome.failure
        cell.failureDetail = outcome.detail
        failed = true
        progress(`${tag}: ${outcome.failure}  (${elapsed} s)\n    ${oneLine(outcome.detail, 300)}`)
        break
      }
      if (settings.abort) {
        const outcome = await uploadOnce(approach, size, settings, Math.floor(size / 2))
        const tag = `${formatSize(size).padEnd(6)} ${UPLOAD_LABELS[approach].padEnd(27)} aborted halfway`
        const elapsed = ((performance.now() - started) / 1000).toFixed(0)
        if (outcome.ok) {
          cell.leftAfterAbort = outcome.extra
          progress(`${tag}: files left ${describeLeft(outcome.extra)}  (${elapsed} s)`)
        } else {
          cell.abortFailure = outcome.failure
          failed = true
          progress(`${tag}: ${outcome.failure}  (${elapsed} s)\n    ${oneLine(outcome.detail, 300)}`)
        }
      }
      if (cell.failure === null && cell.runs.length > 0) {
        cell.median = {
          ms: median(cell.runs.map(r => r.ms)),
          rssBytes: median(cell.runs.map(r => r.rssBytes)),
          heapBytes: median(cell.runs.map(r => r.heapBytes))
        }
        cell.leftOnDisk = cell.runs.map(r => r.left).reduce((worst, left) => left.files > worst.files ? left : worst)
      }
    }
  }

  await s3?.close()
  const command = ['npm run bench:upload', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' ')
  const table = markdownTable(cells, sizes)
  const report = { tool: 'nexure-bench-upload', version: 1, date, command, machine: host, settings: { sizes, approaches, maxOldSpaceSizeMB, tempRoot, settleMs: SETTLE_MS, abort: settings.abort }, cells, durationMs: performance.now() - started, ok: !failed }
  const stamp = date.replace(/[:.]/g, '-')
  mkdirSync(outDir, { recursive: true })
  const jsonPath = path.join(outDir, `bench-upload-${stamp}.json`)
  writeFileSync(jsonPath, JSON.stringify(report, null, 2) + '\n')
  writeFileSync(path.join(outDir, `bench-upload-${stamp}.md`), `${table}\n${describeMachine(host)}, ${date}\n\`${command}\`\n`)
  process.stdout.write(`\n${table}\nFiles left: files in the run's temp dir ${SETTLE_MS} ms after the response (the most of any run), or after the client` +
    ` went away halfway through the file (one run). For S3: pending multipart uploads, and after the aborted upload any object too,` +
    ` counted once none is left or after ${S3_SETTLE_MS / 1000} s.\n`)
  process.stdout.write(`${describeMachine(host)}; ${date}; ${(report.durationMs / 1000).toFixed(0)} s\nresults: ${jsonPath}\n`)
  return failed ? 1 : 0
}

try {
  process.exitCode = await main()
} catch (error) {
  process.stderr.write(`nexure bench:upload: ${(error as Error).message}\n`)
  process.exitCode = 2
}
