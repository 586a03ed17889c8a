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
  let idle: NodeJS.Timeout | null = null
  let whole: NodeJS.Timeout | null = null
  const read: SmallBodyRead = { bytesReceived: 0, ended: false, destroy }

  function destroy (): void {
    payload.removeListener('data', onData)
    payload.removeListener('end', onEnd)
    payload.removeListener('error', onError)
    payload.removeListener('close', onClose)
    if (idle !== null) clearTimeout(idle)
    if (whole !== null) clearTimeout(whole)
    idle = whole = null
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
    idle?.refresh()
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

  if (limits.idleTimeout > 0) {
    idle = setTimeout(() => {
      fail(new FST_NEXURE_BODY_TIMEOUT(`no data for ${limits.idleTimeout} ms (idleTimeout) after ${read.bytesReceived} bytes`))
    }, limits.idleTimeout)
    idle.unref()
  }
  if (limits.bodyTimeout > 0) {
    whole = setTimeout(() => {
      fail(new FST_NEXURE_BODY_TIMEOUT(`the body took longer than ${limits.bodyTimeout} ms (bodyTimeout); ${read.bytesReceived} bytes arrived`))
    }, limits.bodyTimeout)
    whole.unref()
  }
  payload.on('data', onData)
  payload.on('end', onEnd)
  payload.on('error', onError)
  payload.on('close', onClose)
  return read
}
