import type { Readable } from 'node:stream'
import { FST_NEXURE_ABORTED, FST_NEXURE_BODY_TIMEOUT, FST_NEXURE_BODY_TOO_LARGE } from '../errors.js'

export interface SmallBodyLimits {
  readonly bodyLimit: number
  /** As BodySource's: the whole body, in ms from the first read; 0 for no limit. */
  readonly bodyTimeout: number
  /** As BodySource's: the longest silence while waiting for bytes, in ms; 0 for no limit. */
  readonly idleTimeout: number
}

/** What a small body reader knows, for the unread-body policy when it stops early. */
export interface SmallBodyRead {
  bytesReceived: number
  ended: boolean
  /** Stops reading: listeners and timers go. Idempotent. */
  destroy: () => void
}

type Done = (error: Error | null, chunks: Buffer[], length: number) => void

/**
 * Reads a small body straight off the payload, the way Fastify's own parser does: 'data'
 * listeners, no Transform, no pipe, no async iterator. This is the path of most requests an API
 * gets (a body whose Content-Length is under `streamThreshold`, identity-encoded, with no user
 * transforms), and there the streaming pipeline's objects cost more than the parse itself
 * (`npm run bench:traffic`). Every guarantee of the pipeline holds: the byte limit, the two
 * timeouts with the same messages, and a client that goes away is ABORTED.
 *
 * The chunks are handed back as they came (no copy); the caller decodes them once.
 */
export function readSmallBody (payload: Readable, limits: SmallBodyLimits, done: Done): SmallBodyRead {
  const chunks: Buffer[] = []
  const read: SmallBodyRead = { bytesReceived: 0, ended: false, destroy }
  const timed = limits.idleTimeout > 0 || limits.bodyTimeout > 0
  const watched: Watched = { slot: -1, startedAt: 0, lastDataAt: 0, limits, bytes: () => read.bytesReceived, fail }

  function destroy (): void {
    payload.removeListener('data', onData)
    payload.removeListener('end', onEnd)
    payload.removeListener('error', onError)
    payload.removeListener('close', onClose)
    if (timed) unwatch(watched)
  }
  function fail (error: Error): void {
    destroy()
    done(error, chunks, read.bytesReceived)
  }
  function onData (chunk: Buffer): void {
    read.bytesReceived += chunk.length
    if (read.bytesReceived > limits.bodyLimit) {
      fail(new FST_NEXURE_BODY_TOO_LARGE(`the body (${read.bytesReceived} bytes so far)`, limits.bodyLimit))
      return
    }
    chunks.push(chunk)
    if (timed) watched.lastDataAt = performance.now()
  }
  function onEnd (): void {
    read.ended = true
    destroy()
    done(null, chunks, read.bytesReceived)
  }
  function onError (error: Error): void {
    fail(new FST_NEXURE_ABORTED(error.message))
  }
  function onClose (): void {
    if (!read.ended) fail(new FST_NEXURE_ABORTED('the connection closed before the body ended'))
  }

  if (timed) watch(watched)
  payload.on('data', onData)
  payload.on('end', onEnd)
  payload.on('error', onError)
  payload.on('close', onClose)
  return read
}

interface Watched {
  /** Where it is in `watching`, or -1 when not watched. */
  slot: number
  startedAt: number
  lastDataAt: number
  readonly limits: SmallBodyLimits
  readonly bytes: () => number
  readonly fail: (error: Error) => void
}

// The timeouts of small bodies are kept by one sweeping interval, not by a timer per request:
// creating, unref()ing and clearing a Timeout for every 1 KB request cost ~20% of its
// throughput (`npm run bench:traffic`, json-1kb), because the loop's timer reference count
// goes from 0 to 1 and back with each of them. The sweep runs every quarter of the shortest
// timeout being watched (10 ms to 1 s, as BodySource's idle check), and stops after a few idle
// sweeps with nothing to watch.
//
// The reads being watched are a plain array, each read knowing its slot, and leave it by
// swapping with the last one: with a Set, adding and deleting an object per request cost a
// 1 KB request ~10% of its throughput (inject loop, 11 alternating rounds), more than the
// whole parse of its body.
const watching: Watched[] = []
let sweeper: NodeJS.Timeout | null = null
let sweepEvery = 0
let idleSweeps = 0

function sweepInterval (limits: SmallBodyLimits): number {
  const shortest = Math.min(limits.idleTimeout > 0 ? limits.idleTimeout : Infinity, limits.bodyTimeout > 0 ? limits.bodyTimeout : Infinity)
  return Math.max(10, Math.min(1000, Math.floor(shortest / 4)))
}

function watch (watched: Watched): void {
  watched.startedAt = watched.lastDataAt = performance.now()
  watched.slot = watching.length
  watching.push(watched)
  idleSweeps = 0
  const every = sweepInterval(watched.limits)
  if (sweeper !== null && every >= sweepEvery) return
  if (sweeper !== null) clearInterval(sweeper)
  sweepEvery = every
  sweeper = setInterval(sweep, every)
  sweeper.unref()
}

function unwatch (watched: Watched): void {
  const slot = watched.slot
  if (slot === -1) return
  watched.slot = -1
  const last = watching.pop()!
  if (last === watched) return
  watching[slot] = last
  last.slot = slot
}

function sweep (): void {
  if (watching.length === 0) {
    if (++idleSweeps >= 8 && sweeper !== null) {
      clearInterval(sweeper)
      sweeper = null
    }
    return
  }
  const now = performance.now()
  // A read that fails leaves `watching` while it is walked: walk a copy.
  for (const watched of watching.slice()) {
    if (watched.slot === -1) continue
    const { idleTimeout, bodyTimeout } = watched.limits
    if (bodyTimeout > 0 && now - watched.startedAt >= bodyTimeout) {
      watched.fail(new FST_NEXURE_BODY_TIMEOUT(`the body took longer than ${bodyTimeout} ms (bodyTimeout); ${watched.bytes()} bytes arrived`))
    } else if (idleTimeout > 0 && now - watched.lastDataAt >= idleTimeout) {
      watched.fail(new FST_NEXURE_BODY_TIMEOUT(`no data for ${idleTimeout} ms (idleTimeout) after ${watched.bytes()} bytes`))
    }
  }
}
