import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ClientJob, ClientResult, ParentMessage, ServerMessage } from './protocol.js'

// Child processes of the benchmark: a fresh server per run (so each run's peak memory is its
// own, and a server that dies takes nothing else with it) and a client per request.

export interface ExitInfo {
  code: number | null
  signal: NodeJS.Signals | null
}

const STDERR_KEEP = 64 * 1024
// A reset or a peak report takes milliseconds; a garbage collection of a large heap, a few seconds.
const IPC_TIMEOUT_MS = 60_000

export function scriptPath (name: string): string {
  return fileURLToPath(new URL(`./${name}`, import.meta.url))
}

// --expose-gc lets a server settle its heap before a measurement starts (PeakMemory.reset).
function nodeFlags (maxOldSpaceSize: number | null): string[] {
  return ['--expose-gc', ...(maxOldSpaceSize === null ? [] : [`--max-old-space-size=${maxOldSpaceSize}`])]
}

function collectStderr (child: ChildProcess): () => string {
  let text = ''
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (chunk: string) => {
    text = (text + chunk).slice(-STDERR_KEEP)
  })
  return () => text
}

function exitOf (child: ChildProcess): Promise<ExitInfo> {
  return new Promise(resolve => {
    child.once('exit', (code, signal) => { resolve({ code, signal }) })
  })
}

export class ServerProcess {
  readonly port: number
  readonly exited: Promise<ExitInfo>
  readonly #child: ChildProcess
  readonly #stderr: () => string
  #exit: ExitInfo | null = null

  private constructor (child: ChildProcess, port: number, stderr: () => string, exited: Promise<ExitInfo>) {
    this.#child = child
    this.port = port
    this.#stderr = stderr
    this.exited = exited.then(info => { this.#exit = info; return info })
  }

  /** Forks `script` with `args`, and resolves once it listens. */
  static async start (script: string, args: string[], maxOldSpaceSize: number | null): Promise<ServerProcess> {
    const child = fork(scriptPath(script), args, {
      execArgv: nodeFlags(maxOldSpaceSize),
      stdio: ['ignore', 'ignore', 'pipe', 'ipc']
    })
    const stderr = collectStderr(child)
    const exited = exitOf(child)
    const listening = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the server did not listen within ${IPC_TIMEOUT_MS} ms: ${stderr().trim()}`)), IPC_TIMEOUT_MS)
      child.on('message', (message: ServerMessage) => {
        if (message.type !== 'listening') return
        clearTimeout(timer)
        resolve(message.port)
      })
      exited.then(info => {
        clearTimeout(timer)
        reject(new Error(`the server exited before listening (${describeExit(info)}): ${stderr().trim()}`))
      })
    })
    try {
      return new ServerProcess(child, await listening, stderr, exited)
    } catch (error) {
      child.kill('SIGKILL')
      throw error
    }
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}`
  }

  get alive (): boolean {
    return this.#exit === null
  }

  get stderr (): string {
    return this.#stderr()
  }

  /** Sends a message and waits for the answer of type `answer`, or rejects if the server dies. */
  async ask<T extends ServerMessage['type']> (message: ParentMessage, answer: T): Promise<Extract<ServerMessage, { type: T }>> {
    if (!this.alive) throw new Error('the server is not running')
    const child = this.#child
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.off('message', onMessage)
        reject(new Error(`the server did not answer ${message.type} within ${IPC_TIMEOUT_MS} ms`))
      }, IPC_TIMEOUT_MS)
      const onMessage = (reply: ServerMessage): void => {
        if (reply.type !== answer) return
        clearTimeout(timer)
        child.off('message', onMessage)
        resolve(reply as Extract<ServerMessage, { type: T }>)
      }
      child.on('message', onMessage)
      this.exited.then(info => {
        clearTimeout(timer)
        child.off('message', onMessage)
        reject(new Error(`the server exited (${describeExit(info)})`))
      })
      child.send(message)
    })
  }

  /** Ends the server (by its pid) and waits until it is gone. */
  async stop (): Promise<ExitInfo> {
    if (this.alive) this.#child.kill('SIGKILL')
    return this.exited
  }
}

/** Runs one client request in its own process. */
export async function runClient (job: ClientJob): Promise<ClientResult> {
  const child = fork(scriptPath('client.js'), [JSON.stringify(job)], { execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
  const stderr = collectStderr(child)
  const exited = exitOf(child)
  const result = new Promise<ClientResult>(resolve => {
    child.once('message', (message: ClientResult) => resolve(message))
  })
  const outcome = await Promise.race([result, exited])
  if ('ok' in outcome) {
    await exited
    return outcome
  }
  return { ok: false, error: `the client exited without a result (${describeExit(outcome)}): ${stderr().trim()}` }
}

export function describeExit (info: ExitInfo): string {
  return info.signal !== null ? `signal ${info.signal}` : `exit code ${String(info.code)}`
}

/** What killed a server, in a table cell's words. */
export function classifyCrash (stderr: string, info: ExitInfo): string {
  if (/ERR_STRING_TOO_LONG|Cannot create a string longer/.test(stderr)) return 'ERR_STRING_TOO_LONG'
  if (/heap out of memory|Allocation failed|out of memory|OutOfMemory/i.test(stderr)) return 'OOM'
  if (info.signal === 'SIGKILL') return 'killed (SIGKILL, OOM killer?)'
  return `crashed (${describeExit(info)})`
}
