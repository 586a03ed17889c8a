import type { Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'

// Runs the programs in examples/ as a user would: the compiled file (npm test builds first)
// started as a child process, on a free port for a server.

export const DIST = fileURLToPath(new URL('../../dist/examples/', import.meta.url))
export const SOURCES = fileURLToPath(new URL('../../examples/', import.meta.url))

export function built (name: string): string {
  const file = path.join(DIST, `${name}.js`)
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (npm test does)`)
  return file
}

// Without tap's loader and coverage hooks: they would run inside the example too.
export function childEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { NODE_OPTIONS: _options, NODE_V8_COVERAGE: _coverage, ...env } = process.env
  return { ...env, ...extra }
}

export async function tempDir (t: Test, prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export interface Server { child: ChildProcess, url: string, stderr: () => string }

/** Starts an example server with PORT=0 and reads its address from the first stdout line. */
export async function startExample (t: Test, name: string, env: Record<string, string> = {}): Promise<Server> {
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

export interface Run { code: number | null, stdout: string, stderr: string }

/** Runs a compiled example to its end (a CLI), with a bound on its time. */
export async function run (t: Test, file: string, args: string[]): Promise<Run> {
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
export async function stop (t: Test, server: Server): Promise<void> {
  const exit = new Promise<number | null>(resolve => server.child.once('exit', code => resolve(code)))
  server.child.kill('SIGTERM')
  t.equal(await exit, 0, 'exits 0 on SIGTERM')
  // CI runs this on every supported Node.js line: a deprecation or experimental warning that one
  // line prints (from nexure or the Fastify stack under it) shows up here, as
  // `(node:1234) [DEP0040] DeprecationWarning: ...`.
  t.notMatch(server.stderr(), /^\(node:\d+\) .*Warning/m, `no warning from Node ${process.version}`)
}

export async function getJson<T> (url: string): Promise<T> {
  const response = await request(url)
  return await response.body.json() as T
}

/** What the bulk-import examples answer. */
export interface ImportAnswer { inserted?: number, batches: number, committed?: number, error?: { code: string, message: string } }
