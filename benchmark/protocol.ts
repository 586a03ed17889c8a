import type { PeakMemoryReport } from './peak-memory.js'

// IPC messages between bench.ts and its server and client child processes.

export type ParentMessage = { type: 'reset' } | { type: 'peaks' } | { type: 'cpu' }

export type ServerMessage =
  | { type: 'listening', port: number }
  | { type: 'reset-done' }
  | ({ type: 'peaks' } & PeakMemoryReport)
  /** The server process's CPU time so far (`process.cpuUsage()`, user + system), in microseconds. */
  | { type: 'cpu', micros: number }

/** What the client child is asked to send (argv[2], as JSON). */
export interface ClientJob {
  /**
   * A JSON array of `size` bytes, a multipart upload of one file of `size` bytes, or a JSON array
   * of at most `size` bytes of rows for a bulk-import server.
   */
  kind: 'json' | 'upload' | 'import'
  url: string
  /** Body size in bytes. */
  size: number
  /** Give up after this many milliseconds. */
  timeoutMs: number
  /** Uploads only: abort the request once this many file bytes are sent (a client that goes away). */
  abortAfterBytes?: number
}

export type ClientResult =
  | { ok: true, ms: number, items: number, expectedItems: number, bytes: number, aborted?: boolean }
  | { ok: false, error: string, status?: number, body?: string }
