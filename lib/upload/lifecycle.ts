import type { FastifyReply, FastifyRequest, onRequestHookHandler, onSendHookHandler, RouteOptions } from 'fastify'
import { kUploadRouteOptions, kUploadState } from '../symbols.js'
import { decideUnreadRest, drainOrClose, restOf, type UnreadBody } from '../stream/unread-body.js'
import { normalizeRouteUploadOptions, type ResolvedUploadOptions } from './options.js'
import { UploadState } from './request-uploads.js'
import './types.js'

// The hooks of streamUpload, in the order a request meets them.

const MULTIPART_FORM_DATA = /^\s*multipart\/form-data\b/i

/** onRoute: a route's `config.streamUpload` is checked when the route is registered, and stored resolved. */
export function resolveUploadRoute (plugin: ResolvedUploadOptions) {
  return function onRoute (route: RouteOptions): void {
    const config = route.config
    if (config?.streamUpload === undefined) return
    const resolved = normalizeRouteUploadOptions(config.streamUpload, plugin, `${String(route.method)} ${route.url}`)
    route.config = { ...config, [kUploadRouteOptions]: resolved }
  }
}

/**
 * onRequest: upload state for multipart requests only; also arms, for that request alone, what
 * follows its answer and the cleanup of a dropped connection. These are listeners on the request
 * and response rather than global onResponse and onRequestAbort hooks, which every route of the
 * application would pay for, GETs included (an onResponse hook cost a 1 KB JSON POST ~8 us of
 * ~70 in an `inject()` loop).
 */
export function startUpload (plugin: ResolvedUploadOptions): onRequestHookHandler {
  return function onRequest (request, reply, done) {
    if (MULTIPART_FORM_DATA.test(request.headers['content-type'] ?? '')) start(request, reply, request.routeOptions.config[kUploadRouteOptions] ?? plugin)
    done()
  }
}

function start (request: FastifyRequest, reply: FastifyReply, options: ResolvedUploadOptions): void {
  const state = new UploadState(request, reply, options)
  request[kUploadState] = state
  reply.raw.once('finish', () => {
    finishUpload(request, reply, state).catch((error: unknown) => {
      request.log.error({ err: error }, 'nexure: the cleanup after the answer failed')
    })
  })
  // A dropped connection never finishes the response: these make cleanup unconditional. A
  // request whose response never went out has failed: what it stored is removed too.
  request.raw.once('close', () => {
    if (!request.raw.complete) void state.storage.dispose('the client closed the connection mid-body', true)
  })
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) void state.storage.dispose('the connection closed before the response was sent', true)
  })
}

/**
 * The upload's unread rest, for the unread-body policy (stream/unread-body.ts): an answer given
 * before the body was read (a 413 halfway through a file, a handler that never called
 * uploads(), a `break` out of the loop) leaves the request piped into a busboy nobody reads, or
 * paused. A multipart body stays framed by its Content-Length whatever went wrong inside it, so
 * a short rest is drained even after a failed upload.
 */
function unreadUploadOf (request: FastifyRequest): UnreadBody | null {
  const state = request[kUploadState]
  const raw = request.raw
  if (state == null || raw.readableEnded || raw.destroyed) return null
  return { rest: () => restOf(request, state.bytesReceived), failed: false, stop: () => raw.unpipe() }
}

/** onSend: keep the connection for a short unread rest, else make this answer its last. */
export const planUnreadUpload: onSendHookHandler = function (request, reply, payload, done) {
  const state = request[kUploadState]
  if (state != null) decideUnreadRest(request, reply, payload, unreadUploadOf(request), state.options.drainLimit)
  done(null, payload)
}

/**
 * Once the response has finished: drain a short rest; then all or nothing: an error answer
 * removes what the request stored, as a failed upload does.
 */
async function finishUpload (request: FastifyRequest, reply: FastifyReply, state: UploadState): Promise<void> {
  const body = unreadUploadOf(request)
  if (body !== null) drainOrClose(request, body, state.options.drainLimit)
  await state.storage.dispose('the response was sent', reply.statusCode >= 400)
}
