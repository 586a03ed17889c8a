import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import type { StreamBodyOptions } from '../options.js'

const plugin: FastifyPluginAsync<StreamBodyOptions> = async () => {
  throw new Error('nexure: streamBody is not implemented yet')
}

export const streamBody = fp(plugin, { fastify: '5.x', name: 'nexure-stream-body' })
