import fp from 'fastify-plugin'
import multipart from '@fastify/multipart'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { kUploadRouteOptions, kUploadState } from '../symbols.js'
import {
  normalizeRouteUploadOptions,
  normalizeUploadOptions,
  type ResolvedUploadOptions,
  type SavedUploads,
  type StreamUploadOptions,
  type StreamUploadRouteOptions,
  type UploadedFile,
  type UploadFields,
  type UploadStats
} from '../upload/options.js'
import type { DiskStoredFile } from '../upload/storage.js'
import { claimBody, iterateUploads, saveAll, UploadState } from '../upload/request-uploads.js'
import { releaseUnreadBody } from '../upload/unread-body.js'
import { continueOnFirstRead } from '../http/expect-continue.js'

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Iterates the request's files, each one yielded once it is completely stored (with disk
     * storage, in the request's own temp directory, removed after the response unless
     * `keepFiles`). Text fields fill `request.uploadFields` as they arrive. Call at most once
     * per request. With another storage, name what it stores: `uploads<S3StoredFile>()`.
     */
    uploads<Stored extends object = DiskStoredFile>(): AsyncIterableIterator<UploadedFile<Stored>>
    /** Text fields received so far by `uploads()` / `saveUploads()`. */
    readonly uploadFields: UploadFields
    /** Consumes the whole body: every file stored, every field; at most once per request. */
    saveUploads<Stored extends object = DiskStoredFile>(): Promise<SavedUploads<Stored>>
    /**
     * Live progress of this request's upload: bytes received, files stored, the file being
     * received. A fresh snapshot at every read; zeros for a request that is not multipart.
     */
    readonly uploadStats: UploadStats
  }
  interface FastifyContextConfig {
    /** Per-route upload options, validated when the route is registered. */
    streamUpload?: StreamUploadRouteOptions
  }
}

interface UploadRequest extends FastifyRequest {
  [kUploadState]: UploadState | null
}
type UploadRouteConfig = Record<string | symbol, unknown> & { [kUploadRouteOptions]?: ResolvedUploadOptions }

const MULTIPART_FORM_DATA = /^\s*multipart\/form-data\b/i
const NO_FIELDS: UploadFields = Object.freeze(Object.create(null) as UploadFields)
const NO_STATS: UploadStats = Object.freeze({ bytesReceived: 0, files: 0, currentFile: null })

const plugin: FastifyPluginAsync<StreamUploadOptions> = async (fastify, rawOptions) => {
  const options = await normalizeUploadOptions(rawOptions)

  // Multipart parsing: reuse @fastify/multipart if the application registered it already.
  if (!fastify.hasPlugin('@fastify/multipart') && !fastify.hasRequestDecorator('parts')) {
    await fastify.register(multipart)
  }

  // Route options: validated at route registration, stored pre-resolved in the route's config.
  fastify.addHook('onRoute', (route: RouteOptions) => {
    const config = route.config as unknown as UploadRouteConfig | undefined
    if (config?.streamUpload === undefined) return
    const name = `${String(route.method)} ${route.url}`
    const resolved = normalizeRouteUploadOptions(config.streamUpload, options, name)
    route.config = { ...config, [kUploadRouteOptions]: resolved } as unknown as RouteOptions['config']
  })

  // Request state: only for multipart requests; also arms the abort cleanup.
  fastify.decorateRequest(kUploadState, null)
  fastify.addHook('onRequest', (request, reply, done) => {
    if (MULTIPART_FORM_DATA.test(request.headers['content-type'] ?? '')) startState(request as UploadRequest, reply)
    done()
  })

  function startState (request: UploadRequest, reply: FastifyReply): void {
    const config = request.routeOptions.config as unknown as UploadRouteConfig
    const state = new UploadState(request, reply, config[kUploadRouteOptions] ?? options)
    request[kUploadState] = state
    // onResponse is skipped when the connection drops: these make cleanup unconditional. A
    // request whose response never went out has failed: what it stored is removed too.
    request.raw.once('close', () => {
      if (!request.raw.complete) void state.storage.dispose('the client closed the connection mid-body', true)
    })
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) void state.storage.dispose('the connection closed before the response was sent', true)
    })
  }

  // The public API.
  fastify.decorateRequest('uploads', function (this: FastifyRequest) {
    const state = claimBody(this, (this as UploadRequest)[kUploadState], 'uploads()')
    return iterateUploads(this, state) as AsyncIterableIterator<UploadedFile<any>>
  })
  fastify.decorateRequest('saveUploads', function (this: FastifyRequest) {
    const state = (this as UploadRequest)[kUploadState]
    if (state?.saved != null) return state.saved
    try {
      const claimed = claimBody(this, state, 'saveUploads()')
      claimed.saved = saveAll(this, claimed)
      return claimed.saved as Promise<SavedUploads<any>>
    } catch (err) {
      return Promise.reject(err)
    }
  })
  fastify.decorateRequest('uploadFields', {
    getter (this: FastifyRequest) {
      return (this as UploadRequest)[kUploadState]?.fields ?? NO_FIELDS
    }
  })
  fastify.decorateRequest('uploadStats', {
    getter (this: FastifyRequest) {
      return (this as UploadRequest)[kUploadState]?.stats() ?? NO_STATS
    }
  })

  // Expect: 100-continue is answered when the body is first read, so a refusal comes first.
  continueOnFirstRead(fastify.server)

  // Keep-alive hygiene and cleanup.
  fastify.addHook('onSend', (request, reply, payload, done) => {
    const state = (request as UploadRequest)[kUploadState]
    if (state !== null) releaseUnreadBody(request, reply, state.bytesReceived, payload)
    done(null, payload)
  })
  // All or nothing: an error answer removes what the request stored, as a failed upload does.
  fastify.addHook('onResponse', async (request, reply) => {
    await (request as UploadRequest)[kUploadState]?.storage.dispose('the response was sent', reply.statusCode >= 400)
  })
  fastify.addHook('onRequestAbort', async (request) => {
    await (request as UploadRequest)[kUploadState]?.storage.dispose('the client aborted the request', true)
  })
}

export const streamUpload = fp(plugin, { fastify: '5.x', name: 'nexure-stream-upload' })
export type { StreamUploadOptions, StreamUploadRouteOptions, UploadedFile, UploadFields, SavedUploads, UploadStats }
