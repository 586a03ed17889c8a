import fp from 'fastify-plugin'
import multipart from '@fastify/multipart'
import type { FastifyPluginAsync } from 'fastify'
import { continueOnFirstRead } from '../http/expect-continue.js'
import { planUnreadUpload, resolveUploadRoute, startUpload } from '../upload/lifecycle.js'
import { normalizeUploadOptions, type StreamUploadOptions } from '../upload/options.js'
import { saveUploads, uploadFields, uploads, uploadStats } from '../upload/request-uploads.js'
import { kUploadState } from '../symbols.js'
import '../upload/types.js'

const plugin: FastifyPluginAsync<StreamUploadOptions> = async (app, options) => {
  const opts = await normalizeUploadOptions(options)

  // Multipart parsing: reuse @fastify/multipart if the application registered it already.
  if (!app.hasPlugin('@fastify/multipart') && !app.hasRequestDecorator('parts')) {
    await app.register(multipart)
  }

  // Per-route options, checked when the route is registered.
  app.addHook('onRoute', resolveUploadRoute(opts))

  // Request state, for multipart requests only; it also arms, per request, what follows the
  // answer (drain, all or nothing) and the cleanup of a dropped connection.
  app.decorateRequest(kUploadState, null)
  app.addHook('onRequest', startUpload(opts))

  // Request API.
  app.decorateRequest('uploads', uploads)
  app.decorateRequest('saveUploads', saveUploads)
  app.decorateRequest('uploadFields', uploadFields)
  app.decorateRequest('uploadStats', uploadStats)

  // Expect: 100-continue is answered when the body is first read, so a refusal comes first.
  continueOnFirstRead(app.server)

  // An answer given before the body was read: keep the connection for a short rest, or close it.
  app.addHook('onSend', planUnreadUpload)
}

export const streamUpload = fp(plugin, { fastify: '5.x', name: 'nexure-stream-upload' })
