import { classifyCrash, runClient, ServerProcess } from './processes.js'
import type { ClientJob, ClientResult } from './protocol.js'

// One measured request against a fresh server process: start it, warm it up, reset its peak
// memory, send the body from a client process, collect time and peaks, stop it.

export interface RunResult {
  ms: number
  /** Peak server RSS during the measured request. */
  rssBytes: number
  /** Peak used V8 heap during the measured request. */
  heapBytes: number
  /** RSS and used heap of the idle, warmed-up server just before the request (included in the peaks). */
  baselineRssBytes: number
  baselineHeapBytes: number
  rssSource: 'VmHWM' | 'sampled'
}

/** A failed run: `failure` is the few words a table cell shows, `detail` the whole story. */
export interface Failure { ok: false, failure: string, detail: string, crashed: boolean }
export type Outcome<Extra> =
  | { ok: true, run: RunResult, extra: Extra }
  | Failure

export interface MeasureSpec<Extra> {
  /** The compiled server script next to this one, e.g. `server.js`. */
  script: string
  args: string[]
  maxOldSpaceSizeMB: number | null
  /** A request sent from this process before the measurement (JIT, connection pools). */
  warmup: (baseUrl: string) => Promise<ClientResult>
  /** The measured request, sent from a client process. */
  job: (baseUrl: string) => ClientJob
  /** Runs after a successful response, while the server still runs (e.g. look at the disk). */
  after: () => Promise<Extra>
}

export function oneLine (text: string, max = 400): string {
  const line = text.replace(/\s+/g, ' ').trim()
  return line.length > max ? `${line.slice(0, max)}...` : line
}

async function crashOrFailure (server: ServerProcess, failure: string, detail: string): Promise<Failure> {
  // The client may notice a dead server (connection reset) before the exit event arrives.
  const exited = await Promise.race([server.exited, new Promise<null>(resolve => setTimeout(() => resolve(null), 3000))])
  if (exited !== null) {
    const stderr = server.stderr.trim()
    // V8's fatal line or the error that killed the process says more than the stack under it.
    const cause = /^.*(?:FATAL ERROR|Error:|Error \[|ERR_).*$/m.exec(stderr)?.[0] ?? stderr.slice(-1000)
    return { ok: false, failure: classifyCrash(stderr, exited), detail: oneLine(`${detail}; the server died: ${cause}`, 2000), crashed: true }
  }
  return { ok: false, failure, detail: oneLine(detail, 2000), crashed: false }
}

export async function measureInFreshServer<Extra> (spec: MeasureSpec<Extra>): Promise<Outcome<Extra>> {
  let server: ServerProcess
  try {
    server = await ServerProcess.start(spec.script, spec.args, spec.maxOldSpaceSizeMB)
  } catch (error) {
    return { ok: false, failure: 'server did not start', detail: oneLine((error as Error).message, 2000), crashed: false }
  }
  try {
    const warmup = await spec.warmup(server.url)
    if (!warmup.ok) return await crashOrFailure(server, 'warm-up failed', `warm-up: ${warmup.error} ${warmup.body ?? ''}`)
    await server.ask({ type: 'reset' }, 'reset-done')
    const client = runClient(spec.job(server.url))
    const result = await Promise.race([client, server.exited.then(() => null)])
    if (result === null) {
      const failed = await client
      return await crashOrFailure(server, 'server exited', failed.ok ? 'the server exited after answering' : failed.error)
    }
    if (!result.ok) return await crashOrFailure(server, result.status === undefined ? 'error' : `HTTP ${result.status}`, `${result.error} ${result.body ?? ''}`)
    const peaks = await server.ask({ type: 'peaks' }, 'peaks')
    const extra = await spec.after()
    return {
      ok: true,
      run: {
        ms: result.ms,
        rssBytes: peaks.rssBytes,
        heapBytes: peaks.heapBytes,
        baselineRssBytes: peaks.baselineRssBytes,
        baselineHeapBytes: peaks.baselineHeapBytes,
        rssSource: peaks.rssSource
      },
      extra
    }
  } finally {
    await server.stop()
  }
}

/** The same body twice on one fresh server: its first request (cold), and after warm-ups (warm). */
export type ColdWarmOutcome =
  | { ok: true, cold: RunResult, warm: RunResult }
  | (Failure & { phase: 'cold' | 'warm-up' | 'warm' })

export interface ColdWarmSpec {
  script: string
  args: string[]
  maxOldSpaceSizeMB: number | null
  /** The measured request, sent from a client process: first on the fresh server, then again once warm. */
  job: (baseUrl: string) => ClientJob
  /** Requests sent from this process between the cold and the warm measurement. */
  warmups: Array<(baseUrl: string) => Promise<ClientResult>>
}

async function measuredRequest (server: ServerProcess, job: ClientJob): Promise<{ ok: true, run: RunResult } | Failure> {
  await server.ask({ type: 'reset' }, 'reset-done')
  const client = runClient(job)
  const result = await Promise.race([client, server.exited.then(() => null)])
  if (result === null) {
    const failed = await client
    return await crashOrFailure(server, 'server exited', failed.ok ? 'the server exited after answering' : failed.error)
  }
  if (!result.ok) return await crashOrFailure(server, result.status === undefined ? 'error' : `HTTP ${result.status}`, `${result.error} ${result.body ?? ''}`)
  const peaks = await server.ask({ type: 'peaks' }, 'peaks')
  return {
    ok: true,
    run: {
      ms: result.ms,
      rssBytes: peaks.rssBytes,
      heapBytes: peaks.heapBytes,
      baselineRssBytes: peaks.baselineRssBytes,
      baselineHeapBytes: peaks.baselineHeapBytes,
      rssSource: peaks.rssSource
    }
  }
}

/**
 * One fresh server process, measured twice: its first large request (cold: the JIT has not seen
 * the streaming code yet, as after a deploy or a restart), then the same request again after
 * `warmups` (warm: the steady state a long-running server sees). Peaks are reset before each.
 */
export async function measureColdAndWarm (spec: ColdWarmSpec): Promise<ColdWarmOutcome> {
  let server: ServerProcess
  try {
    server = await ServerProcess.start(spec.script, spec.args, spec.maxOldSpaceSizeMB)
  } catch (error) {
    return { ok: false, failure: 'server did not start', detail: oneLine((error as Error).message, 2000), crashed: false, phase: 'cold' }
  }
  try {
    const cold = await measuredRequest(server, spec.job(server.url))
    if (!cold.ok) return { ...cold, phase: 'cold' }
    for (const warmup of spec.warmups) {
      const result = await warmup(server.url)
      if (!result.ok) return { ...(await crashOrFailure(server, 'warm-up failed', `warm-up: ${result.error} ${result.body ?? ''}`)), phase: 'warm-up' }
    }
    const warm = await measuredRequest(server, spec.job(server.url))
    if (!warm.ok) return { ...warm, phase: 'warm' }
    return { ok: true, cold: cold.run, warm: warm.run }
  } finally {
    await server.stop()
  }
}
