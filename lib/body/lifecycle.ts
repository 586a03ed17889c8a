import type { FastifyRequest, onResponseHookHandler, onSendHookHandler, preParsingHookHandler, RouteOptions } from 'fastify'
import { resolveRouteOptions, type ResolvedStreamBodyOptions } from '../options.js'
import { afterResponseSent, endStream, http2StreamOf } from '../http/transport.js'
import { announcesClose, closeAfterAnswer, isClosing, isStreamPayload } from '../stream/close-connection.js'
import { kReply, kRouteOptions } from '../symbols.js'
import { bodyStateOf, hasUnreadBody, type BodyState } from './state.js'

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
 * body gets none, and the reply is remembered only where user transforms need it.
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
    routeOptions.onResponse = withHook(routeOptions.onResponse, releaseBody)
  }
}

/** preParsing: user transform factories receive the reply, which a content-type parser is not given. */
export const rememberReply: preParsingHookHandler = function (request, reply, payload, done) {
  request[kReply] = reply
  done(null, payload)
}

/**
 * onSend: a handler may answer before it has read the whole body (it broke out of its loop, or
 * a 400/413 ended it). Node will not dump a body that was piped and paused, so the next request
 * on that keep-alive connection would wait behind the unread bytes (fastify#4588,
 * multipart#630). A short rest is drained after the response; anything else closes the
 * connection, and the client is told so: from then on nothing that arrives on it is run
 * (see stream/close-connection.ts).
 */
export const planUnreadBody: onSendHookHandler = function (request, reply, payload, done) {
  const state = bodyStateOf(request)
  const stream = http2StreamOf(request.raw)
  if (stream !== null) {
    // HTTP/2: nothing to announce; this stream's rest is settled once the response is sent.
    // Fastify adds `connection: close` to every parser error, which HTTP/2 forbids.
    reply.removeHeader('connection')
    if (state !== undefined && hasUnreadBody(state)) afterResponseSent(stream, () => release(request))
    done(null, payload)
    return
  }
  // A streamed reply while the handler still reads the body is full duplex: the body will be
  // read as the reply is written, so the decision waits for onResponse.
  const streamed = isStreamPayload(payload)
  const duplex = streamed && state?.consumedBy != null
  if (state !== undefined && hasUnreadBody(state) && !duplex && (mustClose(request, state) || announcesClose(reply))) {
    // A streamed reply may still claim the body (batches() called inside the stream).
    closeAfterAnswer(request, reply, streamed)
  }
  done(null, payload)
}

function mustClose (request: FastifyRequest, state: BodyState): boolean {
  const rest = request.raw.complete ? 0 : state.contentLength === undefined ? Infinity : state.contentLength - state.reader!.bytesReceived
  // The whole body has arrived (`complete` may lag: a 400 can be sent from the microtasks that
  // follow the body's last bytes, before the parser reports the message complete). The
  // connection can serve the next request, as after Fastify's own parser.
  if (rest === 0) return false
  return state.failed || rest > state.plugin.drainLimit
}

/** After the response: stop reading, and drain a short rest or close, as the policy says. */
function release (request: FastifyRequest): void {
  const state = bodyStateOf(request)
  if (state === undefined || !hasUnreadBody(state)) return
  const announced = isClosing(request.raw.socket)
  state.reader!.destroy()
  if (request.raw.destroyed) return
  const stream = http2StreamOf(request.raw)
  if (stream !== null) {
    // HTTP/2: the same policy, for this stream only (the socket is the whole session's).
    if (mustClose(request, state)) endStream(request.raw)
    else request.raw.resume()
    return
  }
  if (!announced && mustClose(request, state)) {
    // The headers went out before the handler stopped reading (a full-duplex reply): the client
    // could not be told to close, and the rest is too long to drain. Closing is all that is left.
    request.raw.socket?.destroy()
    return
  }
  // Read what is left and discard it: a short rest, so the connection can be reused; on a
  // closing connection the bytes no longer reach the parser (see closeAfterAnswer).
  request.raw.resume()
}

/** onResponse: stop reading, free transforms and pooled buffers, drain a short rest. */
export const releaseBody: onResponseHookHandler = function (request, reply, done) {
  release(request)
  done()
}
