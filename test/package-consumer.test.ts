import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { copyFile, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { consumerLockfile, type Lockfile, type PackedManifest } from './helpers/consumer-lockfile.js'
import { multipartBody } from './helpers/multipart.js'

// nexure as a user gets it: `npm pack`, the tarball installed into a fresh project next to a
// Fastify 5 release other than the repository's own, a consumer that uses every public export
// and decoration compiled under `strict` + `module: nodenext` (an ES module, and a CommonJS file
// that require()s nexure), both started, and real requests sent to them over a socket.
//
// Offline: the consumer is installed with `npm ci --offline` from a lockfile made out of nexure's
// own (test/helpers/consumer-lockfile.ts), so every tarball it needs is one that `npm ci` put in
// the npm cache for this repository, the older Fastify included (the `fastify-5-older` dev
// dependency, `npm:fastify@5.0.0`, also the lower bound of the peer range). The registry is
// never asked. The tarball is packed with --ignore-scripts from the dist/ that `npm test` built.

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const FIXTURE = fileURLToPath(new URL('./fixtures/consumer/', import.meta.url))
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const OLDER_FASTIFY = 'node_modules/fastify-5-older'

// Without tap's loader and coverage hooks, and without the npm_* variables of the `npm test`
// this runs under (they describe nexure's own package); the npm cache location stays.
function childEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (key === 'NODE_OPTIONS' || key === 'NODE_V8_COVERAGE' || key === 'INIT_CWD') continue
    if (/^npm_/i.test(key) && !/^npm_config_(cache|registry|userconfig|globalconfig)$/i.test(key)) continue
    env[key] = value
  }
  return { ...env, ...extra }
}

interface Run { code: number | null, stdout: string, stderr: string }

async function run (command: string, args: string[], cwd: string, timeout = 120_000): Promise<Run> {
  const child = spawn(command, args, { cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeout)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (text: string) => { stdout += text })
  child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  const code = await new Promise<number | null>(resolve => child.once('close', code => resolve(code)))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

async function mustRun (command: string, args: string[], cwd: string): Promise<string> {
  const result = await run(command, args, cwd)
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited with ${String(result.code)}\n${result.stdout}\n${result.stderr}`)
  }
  return result.stdout
}

interface Server { child: ChildProcess, url: string }

async function start (t: Test, file: string, cwd: string, env: Record<string, string> = {}): Promise<Server> {
  const child = spawn(process.execPath, [file], { cwd, env: childEnv({ ...env, PORT: '0' }), stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve)
    child.once('exit', code => reject(new Error(`${file} exited with ${String(code)} before listening:\n${stderr}`)))
  })
  const match = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(first)
  if (match === null) throw new Error(`${file}: unexpected first line: ${first}\n${stderr}`)
  return { child, url: match[1]! }
}

async function stop (t: Test, server: Server): Promise<void> {
  const exit = new Promise<number | null>(resolve => server.child.once('exit', code => resolve(code)))
  server.child.kill('SIGTERM')
  t.equal(await exit, 0, 'the consumer exits 0 on SIGTERM')
}

interface Packed { tarball: string, integrity: string, files: string[] }

/** `npm pack` of the repository into `dir`. */
async function pack (dir: string): Promise<Packed> {
  if (!existsSync(path.join(ROOT, 'dist/lib/index.js'))) throw new Error('dist/lib is missing: run `npm run build` first (npm test does)')
  const out = await mustRun(NPM, ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], ROOT)
  const [info] = JSON.parse(out) as Array<{ filename: string, integrity: string, files: Array<{ path: string }> }>
  return { tarball: info!.filename, integrity: info!.integrity, files: info!.files.map(file => file.path).sort() }
}

const work = await mkdtemp(path.join(tmpdir(), 'nexure-package-'))
t.teardown(() => rm(work, { recursive: true, force: true }))
const packed = await pack(work)
const manifest = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as PackedManifest & Record<string, unknown>

t.test('the tarball holds what a user needs and nothing else', async t => {
  const expected = ['CHANGELOG.md', 'LICENSE', 'README.md', 'package.json']
  for (const file of await readdirDeep(path.join(ROOT, 'lib'))) {
    if (!file.endsWith('.ts')) continue
    const module = path.relative(path.join(ROOT, 'lib'), file).slice(0, -3).split(path.sep).join('/')
    expected.push(`dist/lib/${module}.d.ts`, `dist/lib/${module}.js`)
  }
  // A file here that lib/ no longer has is a stale build output: `npm pack` (prepack) starts
  // from a clean dist/, this test packs the dist/ at hand.
  t.same(packed.files, expected.sort(), 'the compiled lib/ (code and declarations), the package files; no tests, benchmark, examples or source maps')

  const exports = manifest.exports as Record<string, Record<string, string> | string>
  const targets = [manifest.main, manifest.types, ...Object.values(exports).flatMap(target => typeof target === 'string' ? [target] : Object.values(target))]
  for (const target of targets) t.ok(packed.files.includes(path.posix.normalize(String(target))), `${String(target)} is in the tarball`)

  t.equal(manifest.license, 'MIT')
  t.match(await readFile(path.join(ROOT, 'LICENSE'), 'utf8'), /^MIT License\n\nCopyright \(c\) \d{4} /, 'LICENSE is the MIT text')
  t.match(manifest.repository, { url: 'git+https://github.com/nexure/nexure.git' })
  t.match(manifest.bugs, { url: 'https://github.com/nexure/nexure/issues' })
  t.equal(manifest.homepage, 'https://github.com/nexure/nexure#readme')
  t.notOk('fastify' in (manifest.dependencies ?? {}), 'fastify is not a runtime dependency (it would nest a second copy)')
  t.equal(manifest.peerDependencies?.fastify, '^5.0.0', 'fastify is a peer: the user\'s own copy')

  const changelog = await readFile(path.join(ROOT, 'CHANGELOG.md'), 'utf8')
  t.match(changelog, /^# Changelog\n/, 'CHANGELOG.md')
  t.match(changelog, /^## \[Unreleased\]$/m, 'an Unreleased section')
  t.match(changelog, new RegExp(`^## \\[${manifest.version.replaceAll('.', '\\.')}\\] - \\d{4}-\\d{2}-\\d{2}$`, 'm'), `a section for ${manifest.version}`)

  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8')
  const install = /^## Install\n([\s\S]*?)^## /m.exec(readme)?.[1] ?? ''
  t.match(install, /npm install nexure fastify/, 'the README installs nexure with its peer')
  const range = manifest.peerDependencies?.fastify ?? ''
  t.ok(install.includes(`\`fastify\` is a peer dependency (\`${range}\`)`), `and states the supported Fastify line, ${range}`)
})

t.test('a fresh project installs the tarball offline, compiles against it and serves real requests', async t => {
  const project = path.join(work, 'consumer')
  await mkdir(project)
  await cp(FIXTURE, project, { recursive: true })
  await copyFile(path.join(work, packed.tarball), path.join(project, packed.tarball))

  // The packed package.json, as npm will read it (not the repository's).
  await mustRun('tar', ['-xzf', packed.tarball, 'package/package.json'], project)
  const packedManifest = JSON.parse(await readFile(path.join(project, 'package/package.json'), 'utf8')) as PackedManifest
  await rm(path.join(project, 'package'), { recursive: true })

  const repoLock = JSON.parse(await readFile(path.join(ROOT, 'package-lock.json'), 'utf8')) as Lockfile
  const olderFastify = repoLock.packages[OLDER_FASTIFY]?.version
  const repoFastify = repoLock.packages['node_modules/fastify']?.version
  t.ok(olderFastify !== undefined && olderFastify !== repoFastify, `the consumer's fastify ${String(olderFastify)} is not the repository's ${String(repoFastify)}`)
  const registry = (await mustRun(NPM, ['config', 'get', 'registry'], project)).trim()
  const lock = consumerLockfile(repoLock, {
    registry,
    name: 'nexure-consumer',
    tarball: { file: packed.tarball, integrity: packed.integrity, manifest: packedManifest },
    dependencies: { fastify: OLDER_FASTIFY, typescript: 'node_modules/typescript', '@types/node': 'node_modules/@types/node' }
  })
  const root = lock.packages['']!
  await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: root.name, version: root.version, private: true, type: 'module', dependencies: root.dependencies }, null, 2))
  await writeFile(path.join(project, 'package-lock.json'), JSON.stringify(lock, null, 2))
  let since = performance.now()
  await mustRun(NPM, ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], project)
  t.comment(`npm ci --offline: ${Math.round(performance.now() - since)} ms`)

  const installed = JSON.parse(await readFile(path.join(project, 'node_modules/fastify/package.json'), 'utf8')) as { version: string }
  t.equal(installed.version, olderFastify, `the consumer runs fastify ${String(olderFastify)}`)
  // npm's record of the tree it installed: one fastify, the consumer's, whatever nexure's own
  // dependencies (@fastify/multipart, fastify-plugin, ...) declare.
  const tree = JSON.parse(await readFile(path.join(project, 'node_modules/.package-lock.json'), 'utf8')) as Lockfile
  t.same(Object.keys(tree.packages).filter(at => /(^|\/)node_modules\/fastify$/.test(at)), ['node_modules/fastify'], 'npm installed one fastify, none under nexure')

  // Compile: the ES module server and the CommonJS file.
  since = performance.now()
  const tsc = await run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', '.'], project)
  t.comment(`tsc: ${Math.round(performance.now() - since)} ms`)
  t.equal(tsc.code, 0, `tsc --strict --module nodenext compiles the consumer\n${tsc.stdout}${tsc.stderr}`)
  if (tsc.code !== 0) return
  t.match(await readFile(path.join(project, 'dist/require.cjs'), 'utf8'), /require\("nexure"\)/, 'the CommonJS consumer require()s nexure')

  // The consumer uses every export and decoration the packed declarations name.
  const source = await readFile(path.join(FIXTURE, 'src/server.ts'), 'utf8')
  const imported = /import \{([^}]*)\} from 'nexure'/.exec(source)?.[1]!.split(',').map(name => name.trim().replace(/^type /, '')).filter(Boolean) ?? []
  const index = await readFile(path.join(project, 'node_modules/nexure/dist/lib/index.d.ts'), 'utf8')
  const valueExports: string[] = []
  const allExports: string[] = []
  for (const [, type, names] of index.matchAll(/^export (type )?\{([^}]*)\}/gm)) {
    for (const name of names!.split(',').map(name => name.trim()).filter(Boolean)) {
      allExports.push(name)
      if (type === undefined) valueExports.push(name)
    }
  }
  for (const [, name] of index.matchAll(/^export \* as (\w+)/gm)) { allExports.push(name!); valueExports.push(name!) }
  t.same([...imported].sort(), [...allExports].sort(), 'the consumer imports every export of the packed index.d.ts')
  const decorations: string[] = []
  for (const file of await readdirDeep(path.join(project, 'node_modules/nexure/dist/lib'))) {
    if (!file.endsWith('.d.ts')) continue
    for (const [, body] of (await readFile(file, 'utf8')).matchAll(/interface FastifyRequest \{([\s\S]*?)\n {4}\}/g)) {
      for (const [, name] of body!.matchAll(/^ {8}(?:readonly )?(\w+)[<(?:]/gm)) decorations.push(name!)
    }
  }
  // An overloaded method (batches) is declared once per signature.
  const decorated = [...new Set(decorations)].sort()
  t.same(decorated, ['batches', 'bodyStream', 'saveUploads', 'streamStats', 'uploadFields', 'uploadStats', 'uploads'], 'the request decorations')
  for (const name of decorated) t.match(source, new RegExp(`request\\.${name}\\b`), `the consumer uses request.${name}`)

  const uploads = path.join(project, 'uploads')
  await mkdir(uploads)
  const server = await start(t, 'dist/server.js', project, { UPLOAD_DIR: uploads })

  // JSON: 200,000 items under "items", streamed (chunked, no Content-Length).
  const count = 200_000
  async function * rows (): AsyncGenerator<string> {
    yield '{"items":['
    for (let from = 0; from < count; from += 10_000) {
      let text = ''
      for (let i = from; i < from + 10_000; i++) text += `${i === 0 ? '' : ','}{"id":${i},"name":"row ${i}"}`
      yield text
    }
    yield ']}'
  }
  const imported200k = await request(`${server.url}/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Readable.from(rows()) })
  t.equal(imported200k.statusCode, 200)
  t.same(await imported200k.body.json(), { items: count, batches: count / 5000, idSum: (count * (count - 1)) / 2, streamed: true, statsItems: count, skipped: 0 }, '200,000 items counted in batches of the route\'s size')

  const truncated = Buffer.from('{"items":[{"id":1,"name":"a"},{"id":2,"na')
  const bad = await request(`${server.url}/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Readable.from([truncated]) })
  t.equal(bad.statusCode, 400)
  t.match(await bad.body.json(), { code: 'FST_NEXURE_INVALID_JSON', matched: true, offset: truncated.length }, 'a truncated body is a 400 with its offset, matched by errors.FST_NEXURE_INVALID_JSON')

  // NDJSON through a route transform (its SHA-256 of the bytes) and an item schema.
  const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ level: ['info', 'warn', 'error'][i % 3], n: i })).join('\n') + '\n'
  const ndjson = await request(`${server.url}/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines })
  t.equal(ndjson.statusCode, 200)
  t.same(await ndjson.body.json(), { lines: 3000, levels: { info: 1000, warn: 1000, error: 1000 }, sha256: createHash('sha256').update(lines).digest('hex') })
  const invalid = await request(`${server.url}/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: '{"level":"info","n":1}\n{"level":"info"}\n' })
  t.equal(invalid.statusCode, 400)
  t.match(await invalid.body.json(), { code: 'FST_NEXURE_INVALID_ITEM', matched: true })

  // Raw bytes through bodyStream().
  const blob = randomBytes(300 * 1024)
  const raw = await request(`${server.url}/blob`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: blob })
  t.same(await raw.body.json(), { bytes: blob.length, sha256: createHash('sha256').update(blob).digest('hex') })

  // An upload with its SHA-256, then saveUploads().
  const photo = randomBytes(2 * 1024 * 1024 + 123)
  const form = multipartBody([{ name: 'title', value: 'Holidays' }, { name: 'photo', filename: 'photo.jpg', contentType: 'image/jpeg', content: photo }])
  const uploaded = await request(`${server.url}/upload`, { method: 'POST', headers: { 'content-type': form.contentType }, body: form.toBuffer() })
  t.equal(uploaded.statusCode, 200)
  t.same(await uploaded.body.json(), {
    files: [{ fieldname: 'photo', filename: 'photo.jpg', size: photo.length, hash: createHash('sha256').update(photo).digest('hex'), onDisk: photo.length }],
    fields: { title: 'Holidays' },
    received: true
  })
  // The consumer's own storage engine, and its fileFilter refusing an executable by its bytes.
  const memoryForm = multipartBody([{ name: 'doc', filename: 'doc.txt', content: 'in memory' }])
  const inMemory = await request(`${server.url}/memory`, { method: 'POST', headers: { 'content-type': memoryForm.contentType }, body: memoryForm.toBuffer() })
  t.same(await inMemory.body.json(), { files: [{ memoryKey: '1-doc.txt', size: 9, kept: 9 }] })
  const elfForm = multipartBody([{ name: 'bin', filename: 'photo.jpg', contentType: 'image/jpeg', content: Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), randomBytes(100)]) }])
  const elf = await request(`${server.url}/upload`, { method: 'POST', headers: { 'content-type': elfForm.contentType }, body: elfForm.toBuffer() })
  t.equal(elf.statusCode, 415)
  t.equal((await elf.body.json() as { code: string }).code, 'FST_NEXURE_FILE_TYPE_REFUSED')
  const saveForm = multipartBody([{ name: 'a', filename: 'a.txt', content: 'hello' }, { name: 'note', value: 'x' }])
  const saved = await request(`${server.url}/save`, { method: 'POST', headers: { 'content-type': saveForm.contentType }, body: saveForm.toBuffer() })
  t.same(await saved.body.json(), { files: [{ filename: 'a.txt', size: 5, hash: createHash('sha256').update('hello').digest('hex') }], fields: { note: 'x' } })

  // A Content-Length that lies (2 GiB announced, over the default bodyLimit of 1 GiB, a few
  // bytes sent): refused from the header, before reading, and the connection closed.
  const answer413 = await rawExchange(server.url, socket => {
    socket.write(`POST /import HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${2 * 1024 ** 3}\r\n\r\n[{"id":1}`)
  })
  t.match(answer413, /^HTTP\/1\.1 413 /, 'a lying Content-Length is a 413')
  t.match(answer413, /connection: close/i)
  t.match(answer413, /"code":"FST_NEXURE_BODY_TOO_LARGE","matched":true/)

  // batches({ filter }): stream-json, a dependency now, resolved from the installed package.
  const groups = await request(`${server.url}/members`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: Readable.from(['{"groups":[{"members":[{"name":"a"}', ',{"name":"b"}]},{"members":[{"name":"c"}]}]}'])
  })
  t.same(await groups.body.json(), { names: ['a', 'b', 'c'] }, 'batches({ filter }) in the installed package')
  const ages = await request(`${server.url}/ages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"groups":[{"ann":{"age":3}},{"bob":{"age":4},"cy":{"age":5}}]}' })
  t.same(await ages.body.json(), { ages: { ann: 3, bob: 4, cy: 5 } }, 'entries through a wildcard path')

  const engines = await request(`${server.url}/engines`)
  t.same(await engines.body.json(), {
    elements: [1, { a: 2 }, 'three'],
    lines: [{ n: 1 }, { n: 2 }],
    records: [{ n: 1 }, { n: 3 }],
    faults: [{ index: 1, line: 2, offset: 11 }],
    selected: [1, 2],
    released: true,
    slabSize: 64 * 1024,
    pooled: 1,
    exports: [...valueExports].sort(),
    errorCodes: Object.keys(await import('../lib/errors.js')).length
  }, 'the engines, the pool and the runtime exports')

  await stop(t, server)
  t.same(await readdir(uploads), [], 'no upload left in tempDir')

  // CommonJS: require('nexure') on this Node (>= 20.19).
  const cjs = await start(t, 'dist/require.cjs', project)
  const body = Array.from({ length: 500 }, (_, i) => `{"i":${i}}`).join('\n')
  const answer = await request(`${cjs.url}/lines`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body })
  t.same(await answer.body.json(), { lines: 500, errorCodes: Object.keys(await import('../lib/errors.js')).length }, 'the CommonJS consumer answers')
  await stop(t, cjs)
})

/** Writes on a raw socket; collects what the server sends until it closes (or `waitMs`). */
async function rawExchange (url: string, write: (socket: net.Socket) => void, waitMs = 5000): Promise<string> {
  const { port, hostname } = new URL(url)
  const socket = net.connect(Number(port), hostname)
  socket.on('error', () => {})
  await once(socket, 'connect')
  let response = ''
  socket.on('data', (chunk: Buffer) => { response += chunk.toString('latin1') })
  const closed = once(socket, 'close')
  write(socket)
  await Promise.race([closed, sleep(waitMs)])
  socket.destroy()
  return response
}

async function readdirDeep (dir: string): Promise<string[]> {
  const files: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) files.push(...await readdirDeep(full))
    else files.push(full)
  }
  return files
}
