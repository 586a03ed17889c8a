import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import { BufferPool } from '../core/buffer-pool.js'
import { PressureMonitor } from '../stream/pressure.js'
import { createBatches, bodyStream } from '../body/batches.js'
import { createParser } from '../body/parser.js'
import type { SecureParseOptions } from '../core/engine-options.js'
import { continueOnFirstRead } from '../http/expect-continue.js'
import { resolveRoute } from '../body/lifecycle.js'
import {
  JSON_CONTENT_TYPES,
  JSON_SEQ_CONTENT_TYPES,
  JSON_SUFFIX_CONTENT_TYPE,
  NDJSON_CONTENT_TYPES,
  type StreamBodyOptions
} from '../options.js'
import { normalizeStreamBodyOptions } from '../body/resolve-options.js'
import { kBodyState, kReply } from '../symbols.js'
import '../body/types.js'

const plugin: FastifyPluginAsync<StreamBodyOptions> = async (app, options) => {
  const opts = normalizeStreamBodyOptions(options, slabSize => new BufferPool({ slabSize }))
  const policy: SecureParseOptions = {
    protoAction: app.initialConfig.onProtoPoisoning ?? 'error',
    constructorAction: app.initialConfig.onConstructorPoisoning ?? 'error'
  }

  // Adaptive throttling: one pressure monitor for every body of this registration.
  const monitor = opts.underPressure === null ? null : new PressureMonitor(opts.underPressure)
  if (monitor !== null) app.addHook('onClose', async () => monitor.close())

  // Content-type parsers: they replace Fastify's JSON parser in this context only.
  if (app.hasContentTypeParser('application/json')) app.removeContentTypeParser('application/json')
  const jsonParser = createParser('json', opts, policy, monitor)
  app.addContentTypeParser([...JSON_CONTENT_TYPES], jsonParser)
  app.addContentTypeParser(JSON_SUFFIX_CONTENT_TYPE, jsonParser)
  app.addContentTypeParser([...NDJSON_CONTENT_TYPES], createParser('ndjson', opts, policy, monitor))
  app.addContentTypeParser([...JSON_SEQ_CONTENT_TYPES], createParser('json-seq', opts, policy, monitor))
  for (const type of opts.rawContentTypes) {
    if (app.hasContentTypeParser(type)) app.removeContentTypeParser(type)
  }
  app.addContentTypeParser([...opts.rawContentTypes], createParser('raw', opts, policy, monitor))

  // Request API (shared by every registration; each request carries its own options).
  if (!app.hasRequestDecorator('batches')) {
    app.decorateRequest('batches', createBatches(policy))
    app.decorateRequest('bodyStream', bodyStream)
    app.decorateRequest('streamStats', null)
    app.decorateRequest(kBodyState, null)
    app.decorateRequest(kReply, null)
  }

  // Per-route options, checked at registration, and per-route lifecycle hooks where a body can
  // come: the reply for transforms; unread bodies drained or closed; everything freed.
  app.addHook('onRoute', resolveRoute(opts))

  // Expect: 100-continue is answered when the body is first read, so a refusal comes first.
  continueOnFirstRead(app.server)
}

export const streamBody = fp(plugin, { fastify: '5.x', name: 'nexure-stream-body' })
