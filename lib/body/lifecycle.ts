import type { FastifyRequest, onSendHookHandler, preParsingHookHandler, RouteOptions } from 'fastify'
import { resolveRouteOptions, type ResolvedStreamBodyOptions } from './resolve-options.js'
import { isStreamPayload } from '../stream/close-connection.js'
import { decideUnreadRest, drainOrClose, type UnreadBody } from '../stream/unread-body.js'
import { kReply, kRouteOptions } from '../symbols.js'
import { bodyStateOf, hasUnreadBody } from './state.js'

// Fastify parses no body for these methods; their routes get none of nexure's hooks.
const BODYLESS_METHODS = new Set(['GET', 'HEAD', 'TRACE'])

type RouteHook<Hook> = Hook | Hook[] | undefined

function withHook<Hook> (hooks: RouteHook<Hook>, hook: Hook): Hook[] {
  return hooks === undefined ? [hook] : [...(Array.isArray(hooks) ? hooks : [hooks]), hook]
}

/**
 * onRoute: resolves and checks `config.streamBody` when the route is registered, not at its
 * first request, and gives the route the hooks it needs, and only those. A hook costs every
 * request of its route, bodies or not (`npm run bench:traffic`): a route that cannot take a
 * body gets none, and the reply is remembered only where user transforms need it. A route that
 * can take one gets a single onSend hook: what happens after the answer is armed from there,
 * for the requests whose body is still unread (see planUnreadBody).
 */
export function resolveRoute (plugin: ResolvedStreamBodyOptions) {
  return function onRoute (routeOptions: RouteOptions): void {
    const config = routeOptions.config as Record<string, unknown> | undefined
    const resolved = resolveRouteOptions(plugin, config?.streamBody, routeOptions.bodyLimit)
    routeOptions.config = { ...config, [kRouteOptions]: resolved } as RouteOptions['config']
    const methods = Array.isArray(routeOptions.method) ? routeOptions.method : [routeOptions.method]
    if (methods.every(method => BODYLESS_METHODS.has(method.toUpperCase()))) return
    if (resolved.transforms.length > 0) routeOptions.preParsing = withHook(routeOptions.preParsing, rememberReply)
    routeOptions.onSend = withHook(routeOptions.onSend, planUnreadBody)
  }
}

/** preParsing: user transform factories receive the reply, which a content-type parser is not given. */
export const rememberReply: preParsingHookHandler = function (request, reply, payload, done) {
  request[kReply] = reply
  done(null, payload)
}

/** The body's unread rest, for the unread-body policy (stream/unread-body.ts); null when there is none. */
function unreadBodyOf (request: FastifyRequest): UnreadBody | null {
  const state = bodyStateOf(request)
  if (state === undefined || !hasUnreadBody(state)) return null
  const reader = state.reader!
  return {
    rest: () => request.raw.complete ? 0 : state.contentLength === undefined ? Infinity : state.contentLength - reader.bytesReceived,
    failed: state.failed,
    stop: () => reader.destroy()
  }
}

/**
 * onSend: an answer given before the whole body was read keeps the connection only if the rest
 * is short enough to drain (see stream/unread-body.ts). A streamed reply while the handler still
 * reads the body is full duplex: the body will be read as the reply is written, so the decision
 * waits for the end of the response.
 *
 * Only a request whose body is still unread here has anything to do after the answer (stop
 * reading, free transforms and pooled buffers, drain a short rest), so that is armed here, for
 * that request alone, rather than as a route onResponse hook: a body read whole (most requests)
 * then costs nothing after its answer. An onResponse hook cost a 1 KB JSON POST ~8 us of its
 * ~70 (`inject()` loop, a no-op route hook against none, median of 61 alternating rounds);
 * an onSend hook much less.
 */
export const planUnreadBody: onSendHookHandler = function (request, reply, payload, done) {
  const state = bodyStateOf(request)
  const body = unreadBodyOf(request)
  const duplex = isStreamPayload(payload) && state?.consumedBy != null
  decideUnreadRest(request, reply, payload, body, state?.plugin.drainLimit ?? 0, duplex)
  if (body !== null) releaseAfterAnswer(request, reply.raw)
  done(null, payload)
}

/**
 * After the answer (when the response has finished, failed or lost its connection, as Fastify's
 * onResponse would run, and when the connection drops without it): stop reading, free transforms
 * and pooled buffers, drain a short rest. The body is looked at again then: a full-duplex reply
 * may have read it to its end meanwhile.
 */
function releaseAfterAnswer (request: FastifyRequest, response: NodeJS.EventEmitter): void {
  let released = false
  const release = (): void => {
    if (released) return
    released = true
    response.removeListener('finish', release)
    response.removeListener('error', release)
    response.removeListener('close', release)
    const body = unreadBodyOf(request)
    if (body !== null) drainOrClose(request, body, bodyStateOf(request)!.plugin.drainLimit)
  }
  response.on('finish', release)
  response.on('error', release)
  response.on('close', release)
}
