import type { PeakMemoryReport } from './peak-memory.js'

// IPC messages between fairness.ts and its server and health-check children.

export type FairnessServerRequest = { type: 'start' } | { type: 'report' }

export interface EventLoopReport {
  /** The longest event-loop block seen since `start`, in ms (monitorEventLoopDelay's max). */
  maxBlockMs: number
  p99BlockMs: number
  meanBlockMs: number
}

export type FairnessServerMessage =
  | { type: 'listening', port: number }
  | { type: 'started' }
  | ({ type: 'report', eventLoop: EventLoopReport } & PeakMemoryReport)

/** A call slower than this is listed with its time in HealthResult.slow. */
export const SLOW_MS = 50

export type HealthRequest = { type: 'stop' }

export interface HealthResult {
  /** Latency of every answered GET /health, in ms, from the moment it was sent. */
  latenciesMs: number[]
  sent: number
  failed: number
  firstError: string | null
  /** How late the client's own 10 ms timer fired at worst, in ms: its share of any delay. */
  maxClientLagMs: number
  durationMs: number
  /** The calls slower than SLOW_MS, as [sent at (ms since the first call), latency ms]: when the stalls were. */
  slow: Array<[number, number]>
}

export type HealthMessage = { type: 'ready' } | ({ type: 'result' } & HealthResult)
