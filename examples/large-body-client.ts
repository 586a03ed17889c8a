import { createWriteStream } from 'node:fs'
import { Readable, Transform, pipeline, type Writable } from 'node:stream'
import { pipeline as pipelineAsync } from 'node:stream/promises'
import { parseArgs } from 'node:util'
import { createGzip } from 'node:zlib'
import { request } from 'undici'

// Generates a JSON array or NDJSON body of any size and streams it, to a server or to a file,
// without ever holding it: rows are produced in ~64 KiB chunks only when the destination asks
// for more (a Readable's read()), so a 10 GB body costs the same memory as a 10 MB one. The rows
// are deterministic: the same flags always give the same bytes.
//
//   node dist/examples/large-body-client.js --size 1GB --url http://127.0.0.1:3000/import
//   node dist/examples/large-body-client.js --size 50MB --format ndjson --gzip --out logs.ndjson.gz
//   node dist/examples/large-body-client.js --count 5 --format ndjson     # to stdout
//
// With --url it prints the response body on stdout, and the status, bytes sent and MB/s on
// stderr; it exits 1 when the answer is an error status (>= 400) or the request fails.

const HELP = `Usage: large-body-client [options]

  --size SIZE          body size before compression, e.g. 1GB, 50MB, 512KiB (default 1GB;
                       KB/MB/GB are powers of 1000, KiB/MiB/GiB powers of 1024)
  --count N            exactly N rows instead of --size
  --format json|ndjson a JSON array of rows, or one row per line (default json)
  --gzip               gzip the body (and send content-encoding: gzip)
  --invalid-at N       make row N (0-based) invalid: its amount is the string "n/a"
  --url URL            POST the body there; without it the body goes to --out or stdout
  --out FILE           write the body to FILE
  --content-type TYPE  override the content-type sent with --url
  --help               this text

Rows look like {"id":0,"name":"row 0","amount":123.45,"level":"info"}.`

const UNITS: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4 }
const LEVELS = ['debug', 'info', 'info', 'info', 'info', 'warn', 'warn', 'error'] as const
const CHUNK_BYTES = 64 * 1024

function fail (message: string): never {
  process.stderr.write(`large-body-client: ${message}\n\n${HELP}\n`)
  process.exit(2)
}

function parseSize (text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?$/i.exec(text.trim())
  if (match === null) fail(`--size: expected a size such as 1GB or 50MB, got "${text}"`)
  return Math.floor(Number(match[1]) * UNITS[(match[2] ?? 'b').toLowerCase()]!)
}

function parseCount (flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  if (!/^\d+$/.test(text)) fail(`${flag}: expected a non-negative integer, got "${text}"`)
  return Number(text)
}

/** One row, as JSON text. A multiplicative hash of the index makes the values look random. */
function row (index: number, invalid = false): string {
  const hash = Math.imul(index + 1, 2654435761) >>> 0
  const amount = invalid ? '"n/a"' : String((hash % 1_000_000) / 100)
  return `{"id":${index},"name":"row ${index}","amount":${amount},"level":"${LEVELS[hash % LEVELS.length]!}"}`
}

interface BodyPlan {
  format: 'json' | 'ndjson'
  /** Most bytes of the body; ignored when `count` is set. */
  size: number
  count: number | undefined
  invalidAt: number | undefined
}

/**
 * The body as a Readable. Nothing is produced ahead of demand: read() builds one chunk and
 * pushes it, and is called again only when the consumer (socket, gzip, file) wants more.
 */
function generate (plan: BodyPlan): Readable & { rows: () => number, bytes: () => number } {
  const json = plan.format === 'json'
  const closing = json ? ']' : ''
  let index = 0
  let bytes = json ? 1 : 0
  let started = false
  let done = false
  const more = (next: string): boolean => plan.count === undefined
    ? bytes + next.length + closing.length <= plan.size
    : index < plan.count
  function chunk (): string {
    let text = ''
    if (!started) {
      started = true
      if (json) text = '['
    }
    while (!done && text.length < CHUNK_BYTES) {
      let next = row(index, index === plan.invalidAt)
      next = json ? (index === 0 ? next : ',' + next) : next + '\n'
      if (!more(next)) {
        done = true
        text += closing
        break
      }
      text += next
      bytes += next.length
      index++
    }
    return text
  }
  const stream = new Readable({
    read () {
      // Produced on the next turn of the event loop, never synchronously: a consumer that never
      // pushes back (a server discarding what it reads) would otherwise keep this loop running
      // without a break, and the response it sent would never be read.
      setImmediate(() => {
        const text = chunk()
        if (text.length > 0) this.push(text)
        if (done) this.push(null)
      })
    }
  })
  return Object.assign(stream, { rows: () => index, bytes: () => done ? bytes + closing.length : bytes })
}

/** Counts the bytes that pass, for the MB/s line. */
function counter (): Transform & { bytes: number } {
  const stream = Object.assign(new Transform({
    transform (chunk: Buffer, _encoding, callback) {
      stream.bytes += chunk.length
      callback(null, chunk)
    }
  }), { bytes: 0 })
  return stream
}

const OPTIONS = {
  size: { type: 'string', default: '1GB' },
  count: { type: 'string' },
  format: { type: 'string', default: 'json' },
  gzip: { type: 'boolean', default: false },
  'invalid-at': { type: 'string' },
  url: { type: 'string' },
  out: { type: 'string' },
  'content-type': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false }
} as const

function parse (): ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'] {
  try {
    return parseArgs({ options: OPTIONS, strict: true }).values
  } catch (error) {
    fail((error as Error).message) // an unknown flag or a missing value
  }
}
const values = parse()

if (values.help) {
  process.stdout.write(`${HELP}\n`)
  process.exit(0)
}
if (values.url !== undefined && values.out !== undefined) fail('give --url or --out, not both')
if (values.format !== 'json' && values.format !== 'ndjson') fail(`--format: expected json or ndjson, got "${values.format}"`)
const plan: BodyPlan = {
  format: values.format,
  size: parseSize(values.size),
  count: parseCount('--count', values.count),
  invalidAt: parseCount('--invalid-at', values['invalid-at'])
}
const body = generate(plan)
const stages: Transform[] = values.gzip ? [createGzip()] : []
const wire = counter()
const started = performance.now()

function formatBytes (bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} KB`
  return `${bytes} B`
}

function summary (status: string): string {
  const seconds = (performance.now() - started) / 1000
  const rate = (bytes: number): string => `${(bytes / 1e6 / seconds).toFixed(1)} MB/s`
  const raw = values.gzip ? `, ${formatBytes(body.bytes())} before gzip (${rate(body.bytes())})` : ''
  return `${status}${formatBytes(wire.bytes)} in ${seconds.toFixed(2)} s: ${rate(wire.bytes)}; ${body.rows()} rows, ${plan.format}${raw}\n`
}

if (values.url === undefined) {
  if (values.out === undefined && process.stdout.isTTY) fail('refusing to write the body to a terminal: give --out FILE, --url URL or redirect stdout')
  const destination: Writable = values.out === undefined ? process.stdout : createWriteStream(values.out)
  // `| head` closing the pipe early is not an error worth a stack trace.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => { if (error.code === 'EPIPE') process.exit(0) })
  await pipelineAsync([body, ...stages, wire, destination])
  process.stderr.write(summary(`wrote ${values.out ?? 'stdout'}: `))
} else {
  const headers: Record<string, string> = {
    'content-type': values['content-type'] ?? (plan.format === 'json' ? 'application/json' : 'application/x-ndjson')
  }
  if (values.gzip) headers['content-encoding'] = 'gzip'
  // The body may stop early (the server answers an error mid-body and closes): what counts is
  // the answer, so a broken pipe here is not reported on its own.
  const outgoing = pipeline([body, ...stages, wire], () => {}) as unknown as Readable
  try {
    const response = await request(values.url, { method: 'POST', body: outgoing, headers })
    const text = await response.body.text()
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
    process.stderr.write(summary(`HTTP ${response.statusCode}, sent `))
    // An answer before the end of the body (an error mid-body): sending the rest is pointless.
    if (!body.readableEnded) body.destroy()
    process.exitCode = response.statusCode >= 400 ? 1 : 0
  } catch (error) {
    process.stderr.write(summary(`request failed (${(error as Error).message}) after `))
    process.exitCode = 1
  }
}
