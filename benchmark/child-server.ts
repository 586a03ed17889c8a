import type { FastifyInstance } from 'fastify'
import { PeakMemory } from './peak-memory.js'
import type { ParentMessage, ServerMessage } from './protocol.js'

/**
 * Runs `app` as a benchmark server child: listens on a loopback port, tells the parent which,
 * and answers its IPC questions (reset the peaks, report them). Ends when the parent goes.
 */
export async function serveToParent (app: FastifyInstance): Promise<void> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address')
  answerParent(address.port, () => app.close())
}

/**
 * For a server already listening on `port` in this process (an example program run as it is):
 * tells the parent the port and answers its IPC questions; `close` runs when the parent goes.
 */
export function answerParent (port: number, close: () => Promise<unknown>): void {
  if (process.send === undefined) throw new Error('a benchmark server is forked by its benchmark (it needs an IPC channel)')
  const send = (message: ServerMessage): void => { process.send?.(message) }
  const peaks = new PeakMemory()
  peaks.start()
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'reset') {
      peaks.reset()
      send({ type: 'reset-done' })
    } else if (message.type === 'peaks') {
      send({ type: 'peaks', ...peaks.report() })
    } else if (message.type === 'cpu') {
      const usage = process.cpuUsage()
      send({ type: 'cpu', micros: usage.user + usage.system })
    }
  })
  process.on('disconnect', () => {
    peaks.stop()
    close().finally(() => process.exit(0))
  })
  send({ type: 'listening', port })
}
