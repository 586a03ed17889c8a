import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'

const plugin: FastifyPluginAsync = async () => {
  throw new Error('nexure: streamUpload is not implemented yet')
}

export const streamUpload = fp(plugin, { fastify: '5.x', name: 'nexure-stream-upload' })
