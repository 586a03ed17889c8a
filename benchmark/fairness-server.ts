import { monitorEventLoopDelay } from 'node:perf_hooks'
import { buildApp } from './approaches.js'
import { PeakMemory } from './peak-memory.js'
import type { FairnessServerMessage, FairnessServerRequest } from './fairness-protocol.js'

// The fairness benchmark's server, forked by fairness.ts with `<standard|nexure> <bodyLimit>`:
// the bench's JSON app (POST /items counts the items) plus a light GET /health. It measures its
// own event loop (the longest block is what every other request had to wait behind) and its
// peak memory between `start` and `report`.

const [approach = '', bodyLimitText = ''] = process.argv.slice(2)
if ((approach !== 'standard' && approach !== 'nexure') || !/^\d+$/.test(bodyLimitText) || process.send === undefined) {
  console.error(`usage (forked by fairness.js): fairness-server.js <standard|nexure> <bodyLimit>, got ${process.argv.slice(2).join(' ')}`)
  process.exit(2)
}
const send = (message: FairnessServerMessage): void => { process.send?.(message) }

const app = await buildApp(approach, Number(bodyLimitText))
app.get('/health', async () => ({ ok: true }))
await app.listen({ port: 0, host: '127.0.0.1' })

// 5 ms sampling: a block shows up as a timer that fired that much late, whatever its length.
const delay = monitorEventLoopDelay({ resolution: 5 })
const peaks = new PeakMemory()
peaks.start()
const ms = (ns: number): number => Math.round(ns / 1e4) / 100

process.on('message', (message: FairnessServerRequest) => {
  if (message.type === 'start') {
    peaks.reset()
    delay.disable()
    delay.reset()
    delay.enable()
    send({ type: 'started' })
  } else if (message.type === 'report') {
    delay.disable()
    const eventLoop = { maxBlockMs: ms(delay.max), p99BlockMs: ms(delay.percentile(99)), meanBlockMs: ms(delay.mean) }
    send({ type: 'report', eventLoop, ...peaks.report() })
  }
})
process.on('disconnect', () => {
  peaks.stop()
  app.close().finally(() => process.exit(0))
})
const address = app.server.address()
if (address === null || typeof address === 'string') throw new Error('expected a TCP address')
send({ type: 'listening', port: address.port })
