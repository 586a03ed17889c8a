import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { FormData, request } from 'undici'
import { contentHash, eventually, multipartBody } from './helpers/multipart.js'

// Every program in examples/ runs here as it would for a user: the compiled file (npm test
// builds first) started as a child process on a free port, real requests over the socket, and
// the real answer checked against what the test computed on its own. The SQLite import is fed by
// the large-body-client example itself, so the client is exercised as well.

const DIST = fileURLToPath(new URL('../dist/examples/', import.meta.url))
const SOURCES = fileURLToPath(new URL('../examples/', import.meta.url))

function built (name: string): string {
  const file = path.join(DIST, `${name}.js`)
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (npm test does)`)
  return file
}

// Without tap's loader and coverage hooks: they would run inside the example too.
function childEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { NODE_OPTIONS: _options, NODE_V8_COVERAGE: _coverage, ...env } = process.env
  return { ...env, ...extra }
}

async function tempDir (t: Test, prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

interface Server { child: ChildProcess, url: string, stderr: () => string }

/** Starts an example server with PORT=0 and reads its address from the first stdout line. */
async function startExample (t: Test, name: string, env: Record<string, string> = {}): Promise<Server> {
  const child = spawn(process.execPath, [built(name)], { env: childEnv({ ...env, PORT: '0' }), stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve)
    child.once('exit', code => reject(new Error(`${name} exited with ${String(code)} before listening:\n${stderr}`)))
  })
  const match = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(first)
  if (match === null) throw new Error(`${name}: unexpected first line: ${first}`)
  return { child, url: match[1]!, stderr: () => stderr }
}

interface Run { code: number | null, stdout: string, stderr: string }

/** Runs a compiled example to its end (a CLI), with a bound on its time. */
async function run (t: Test, file: string, args: string[]): Promise<Run> {
  const child = spawn(process.execPath, [file, ...args], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (text: string) => { stdout += text })
  child.stderr!.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  const code = await new Promise<number | null>(resolve => child.once('close', code => resolve(code)))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/** SIGTERM, as Ctrl-C or a process manager would: the example closes and exits 0. */
async function stop (t: Test, server: Server): Promise<void> {
  const exit = new Promise<number | null>(resolve => server.child.once('exit', code => resolve(code)))
  server.child.kill('SIGTERM')
  t.equal(await exit, 0, 'exits 0 on SIGTERM')
  // CI runs this on every supported Node.js line: a deprecation or experimental warning that one
  // line prints (from nexure or the Fastify stack under it) shows up here, as
  // `(node:1234) [DEP0040] DeprecationWarning: ...`.
  t.notMatch(server.stderr(), /^\(node:\d+\) .*Warning/m, `no warning from Node ${process.version}`)
}

async function getJson<T> (url: string): Promise<T> {
  const response = await request(url)
  return await response.body.json() as T
}

interface ImportAnswer { inserted?: number, batches: number, committed?: number, error?: { code: string, message: string } }

t.test('bulk-import-sqlite', async t => {
  const dir = await tempDir(t, 'nexure-example-sqlite-')
  const server = await startExample(t, 'bulk-import-sqlite', { DB: path.join(dir, 'import.sqlite') })
  const client = built('large-body-client')
  const count = async (): Promise<number> => (await getJson<{ count: number }>(`${server.url}/count`)).count

  await t.test('20,000 rows streamed by large-body-client are all inserted', async t => {
    const result = await run(t, client, ['--count', '20000', '--url', `${server.url}/import`])
    t.equal(result.code, 0, 'the client exits 0')
    t.same(JSON.parse(result.stdout), { inserted: 20000, batches: 20 }, 'the answer: every row, 20 batches')
    t.match(result.stderr, /^HTTP 200, sent .* MB\/s/, 'the client reports the status and MB/s')
    t.comment(result.stderr.trim())
    t.equal(await count(), 20000, 'GET /count agrees')
  })

  await t.test('an invalid item: 400 naming it, the batches before it committed', async t => {
    const before = await count()
    const result = await run(t, client, ['--count', '20000', '--invalid-at', '12345', '--url', `${server.url}/import`])
    t.equal(result.code, 1, 'the client exits 1 on an error status')
    t.match(result.stderr, /^HTTP 400/)
    const answer = JSON.parse(result.stdout) as ImportAnswer
    t.equal(answer.error?.code, 'FST_NEXURE_INVALID_ITEM')
    t.match(answer.error?.message, /Item 12345 is invalid/)
    // The batch holding the bad item never reaches the handler: 12 batches of 1000 went in.
    t.equal(answer.committed, 12000)
    t.equal(answer.batches, 12)
    t.equal(await count(), before + 12000, 'the committed rows are in the database')
  })

  await t.test('?atomic=1: an invalid item rolls back everything', async t => {
    const before = await count()
    const result = await run(t, client, ['--count', '20000', '--invalid-at', '15000', '--url', `${server.url}/import?atomic=1`])
    t.equal(result.code, 1)
    const answer = JSON.parse(result.stdout) as ImportAnswer
    t.equal(answer.error?.code, 'FST_NEXURE_INVALID_ITEM')
    t.match(answer.error?.message, /Item 15000 is invalid/)
    t.equal(answer.committed, 0)
    t.equal(await count(), before, 'nothing was committed')
  })

  await t.test('?atomic=1 without a fault commits everything at the end', async t => {
    const before = await count()
    const result = await run(t, client, ['--count', '5000', '--url', `${server.url}/import?atomic=1`])
    t.equal(result.code, 0, 'the client exits 0')
    t.same(JSON.parse(result.stdout), { inserted: 5000, batches: 5 })
    t.equal(await count(), before + 5000)
  })

  await t.test('malformed JSON, streamed or parsed at once, answers in the same shape', async t => {
    const before = await count()
    const text = '[{"id":1,"name":"a","amount":1},{"id":2,"name":'
    const headers = { 'content-type': 'application/json' }
    // Chunked (no content-length): streamed. With a small content-length: parsed before the handler.
    for (const body of [Readable.from([Buffer.from(text)]), text]) {
      const response = await request(`${server.url}/import`, { method: 'POST', headers, body })
      t.equal(response.statusCode, 400)
      const answer = await response.body.json() as ImportAnswer
      t.equal(answer.error?.code, 'FST_NEXURE_INVALID_JSON')
      t.equal(answer.committed, 0)
    }
    t.equal(await count(), before)
  })

  await stop(t, server)
})

t.test('ndjson-ingest: gzip NDJSON counted per level', async t => {
  const server = await startExample(t, 'ndjson-ingest')
  const levels = ['info', 'info', 'info', 'warn', 'error', 'debug', 'trace']
  const expected: Record<string, number> = {}
  let lines = 0
  let text = ''
  let seed = 7
  while (text.length < 3 * 1024 * 1024) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    const level = seed % 50 === 0 ? undefined : levels[seed % levels.length]!
    text += JSON.stringify({ ts: lines, level, msg: `event ${seed.toString(36)}` }) + '\n'
    if (seed % 97 === 0) text += '\n' // blank lines are skipped, not counted
    expected[level ?? 'none'] = (expected[level ?? 'none'] ?? 0) + 1
    lines++
  }
  const gzipped = gzipSync(text)
  const headers = { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' }
  const chunks = (): Buffer[] => Array.from({ length: Math.ceil(gzipped.length / 65536) }, (_, i) => gzipped.subarray(i * 65536, (i + 1) * 65536))
  // With a content-length, and chunked (an open-ended feed).
  for (const [how, body] of [['content-length', gzipped], ['chunked', Readable.from(chunks())]] as const) {
    const response = await request(`${server.url}/logs`, { method: 'POST', headers, body })
    t.equal(response.statusCode, 200, how)
    t.same(await response.body.json(), { lines, levels: expected }, `${how}: ${lines} lines, ${(text.length / 1e6).toFixed(1)} MB (${(gzipped.length / 1e6).toFixed(2)} MB gzipped)`)
  }
  await stop(t, server)
})

t.test('upload: sizes and sha256 of the files, nothing left on disk', async t => {
  const uploadDir = await tempDir(t, 'nexure-example-upload-')
  const server = await startExample(t, 'upload', { UPLOAD_DIR: uploadDir })
  const files = [
    { field: 'file', filename: 'big.bin', content: randomBytes(3 * 1024 * 1024 + 17) },
    { field: 'notes', filename: 'notes.txt', content: Buffer.from('hello\n'.repeat(10_000)) }
  ]
  const form = new FormData()
  form.append('title', 'two files')
  for (const file of files) form.append(file.field, new Blob([file.content]), file.filename)
  const response = await request(`${server.url}/upload`, { method: 'POST', body: form })
  t.equal(response.statusCode, 200)
  t.same(await response.body.json(), files.map(file => ({
    field: file.field,
    filename: file.filename,
    size: file.content.length,
    sha256: createHash('sha256').update(file.content).digest('hex')
  })))
  // The request's directory is removed after the response went out, so the client may look first.
  t.ok(await eventually(async () => (await readdir(uploadDir)).length === 0), 'UPLOAD_DIR is empty afterwards')

  // Half a file sent, the rest held back: the upload is on disk in UPLOAD_DIR meanwhile.
  const part = { name: 'file', filename: 'slow.bin', content: { size: 2 * 1024 * 1024 } }
  const slow = multipartBody([part])
  const chunks = [...slow.chunks()]
  const half = Math.floor(chunks.length / 2)
  const body = new Readable({ read () {} })
  for (const chunk of chunks.slice(0, half)) body.push(chunk)
  const pending = request(`${server.url}/upload`, { method: 'POST', body, headers: { 'content-type': slow.contentType, 'content-length': String(slow.length) } })
  t.ok(await eventually(async () => (await readdir(uploadDir)).length === 1), 'mid-upload, the file is spilled into UPLOAD_DIR')
  for (const chunk of chunks.slice(half)) body.push(chunk)
  body.push(null)
  const slowResponse = await pending
  t.equal(slowResponse.statusCode, 200)
  t.same(await slowResponse.body.json(), [{ field: 'file', filename: 'slow.bin', size: part.content.size, sha256: contentHash(part.content) }])
  t.ok(await eventually(async () => (await readdir(uploadDir)).length === 0), 'and it is gone after the response')
  await stop(t, server)
})

t.test('run.ts: `npm run example -- <name>`', async t => {
  const runner = built('run')
  const names = (await readdir(SOURCES)).filter(file => file.endsWith('.ts') && file !== 'run.ts').map(file => file.slice(0, -3))
  t.ok(names.length >= 5, `examples found: ${names.join(', ')}`)

  const none = await run(t, runner, [])
  t.equal(none.code, 1, 'no name: exit 1')
  for (const name of names) t.match(none.stderr, new RegExp(`^  ${name} `, 'm'), `lists ${name}`)

  const unknown = await run(t, runner, ['no-such-example'])
  t.equal(unknown.code, 1, 'an unknown name: exit 1')
  t.match(unknown.stderr, /Unknown example "no-such-example"/)

  // The example sees its own flags (the name is taken out of process.argv).
  const client = await run(t, runner, ['large-body-client', '--count', '3', '--format', 'ndjson'])
  t.equal(client.code, 0, 'the example ran and exited 0')
  t.same(client.stdout.trim().split('\n').map(line => (JSON.parse(line) as { id: number }).id), [0, 1, 2])
})
