import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import http from 'node:http'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

// Full duplex over a real socket: examples/transform-stream.ts (compiled, as `npm test` builds
// it) answers one NDJSON line per batch while a 200 MB NDJSON body is still being sent. The
// client counts the bytes it has sent when the first result line arrives, which must be a small
// part of the body, and the server's peak RSS must stay far below the body's size.

const EXAMPLE = fileURLToPath(new URL('../dist/examples/transform-stream.js', import.meta.url))
const BODY_BYTES = 200 * 1024 * 1024
const LINES_PER_CHUNK = 1000
const MIB = 1024 * 1024

function line (index: number): string {
  return `{"id":${index},"amount":${index % 7},"name":"row ${index}","tags":["a","b"],"note":"${'x'.repeat(40)}"}\n`
}

async function startExample (t: Test): Promise<{ child: ChildProcess, url: string }> {
  if (!existsSync(EXAMPLE)) throw new Error(`${EXAMPLE} is missing: run \`npm run build\` first (npm test does)`)
  // Without tap's loader and coverage hooks (NODE_OPTIONS, NODE_V8_COVERAGE): they would run
  // inside the example and swell the memory it is measured by.
  const { NODE_OPTIONS: _options, NODE_V8_COVERAGE: _coverage, ...env } = process.env
  const child = spawn(process.execPath, [EXAMPLE], { env: { ...env, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const first = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.once('line', resolve)
    child.once('exit', code => reject(new Error(`the example exited with ${String(code)} before listening`)))
  })
  const match = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(first)
  if (match === null) throw new Error(`unexpected first line: ${first}`)
  return { child, url: match[1]! }
}

/** Peak resident memory of a process, from the kernel (Linux). */
function peakRss (pid: number): number {
  const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (match === null) throw new Error('no VmHWM in /proc/<pid>/status')
  return Number(match[1]) * 1024
}

interface ResultLine { batch?: number, items: number, amount?: number, done?: boolean, error?: unknown, stats?: { items: number, bytesReceived: number } }

t.test('the example streams result lines while a 200 MB NDJSON body is still arriving', async t => {
  const { child, url } = await startExample(t)
  const target = new URL('/transform', url)
  let sent = 0
  let items = 0
  let expectedAmount = 0
  let sentAtFirstLine = -1
  let finishedSendingAt = -1
  const results: ResultLine[] = []

  const done = new Promise<void>((resolve, reject) => {
    const req = http.request(target, { method: 'POST', agent: false, headers: { 'content-type': 'application/x-ndjson' } })
    req.on('error', reject)
    req.on('response', response => {
      t.equal(response.statusCode, 200)
      t.match(response.headers['content-type'], /application\/x-ndjson/)
      const lines = createInterface({ input: response })
      lines.on('line', text => {
        if (sentAtFirstLine < 0) sentAtFirstLine = sent
        results.push(JSON.parse(text) as ResultLine)
      })
      lines.on('close', resolve)
      response.on('error', reject)
    })
    // Written with backpressure: what was "sent" is what the socket accepted.
    const write = (): void => {
      while (sent < BODY_BYTES) {
        let text = ''
        for (let i = 0; i < LINES_PER_CHUNK; i++) {
          text += line(items)
          expectedAmount += items % 7
          items++
        }
        sent += Buffer.byteLength(text)
        if (!req.write(text)) {
          req.once('drain', write)
          return
        }
      }
      finishedSendingAt = results.length
      req.end()
    }
    write()
  })
  await done
  const serverPeak = peakRss(child.pid!)

  const summary = results.at(-1)
  t.ok(summary?.done, `the last line is the summary, got ${JSON.stringify(summary)}`)
  t.equal(summary?.items, items, 'every item was counted')
  t.equal(summary?.stats?.bytesReceived, sent, 'the server saw every byte')
  const batchLines = results.slice(0, -1)
  t.equal(batchLines.length, Math.ceil(items / 1000), 'one line per batch of 1000')
  t.equal(batchLines.reduce((n, r) => n + r.items, 0), items)
  t.equal(batchLines.reduce((n, r) => n + (r.amount ?? 0), 0), expectedAmount, 'the per-batch work is right')
  t.ok(sentAtFirstLine > 0 && sentAtFirstLine < 16 * MIB,
    `the first result line came after ${(sentAtFirstLine / MIB).toFixed(1)} MiB of ${(BODY_BYTES / MIB).toFixed(0)} MiB were sent`)
  t.ok(finishedSendingAt > batchLines.length / 2,
    `${finishedSendingAt} of ${batchLines.length} result lines had arrived when the client finished sending`)
  // Holding the body would take the idle server (~65 MiB) plus 200 MiB; streaming plateaus near
  // 140-170 MiB (one batch of parsed rows and young-generation garbage), whatever the size.
  t.ok(serverPeak < 250 * MIB, `server peak RSS ${(serverPeak / MIB).toFixed(1)} MiB for a ${(BODY_BYTES / MIB).toFixed(0)} MiB body`)
  t.comment(`first line after ${(sentAtFirstLine / MIB).toFixed(2)} MiB sent; ${finishedSendingAt}/${batchLines.length} lines before the end of the body; server peak RSS ${(serverPeak / MIB).toFixed(1)} MiB`)
})

t.test('the example exits cleanly on SIGTERM', async t => {
  const { child } = await startExample(t)
  const exit = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  child.kill('SIGTERM')
  t.equal(await exit, 0)
})
