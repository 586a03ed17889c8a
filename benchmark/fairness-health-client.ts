import { Agent, request } from 'undici'
import { SLOW_MS, type HealthMessage, type HealthRequest, type HealthResult } from './fairness-protocol.js'

// The light client of the fairness benchmark, a process of its own: one GET /health every
// `interval` ms over keep-alive, on a fixed schedule whether or not the previous one has been
// answered (an open model: a server that blocks for seconds meets a queue of requests, as it
// would in production, instead of a client that politely waits and so hides the stall).
// Forked with `<url> <interval>`; reports `ready` after its first answer, and its latencies
// when the parent sends `stop`.

const [url = '', intervalText = ''] = process.argv.slice(2)
if (process.send === undefined || !/^https?:\/\//.test(url) || !/^\d+$/.test(intervalText)) {
  console.error('fairness-health-client.js is forked by fairness.js: <url> <interval ms>')
  process.exit(2)
}
const interval = Number(intervalText)
const send = (message: HealthMessage, then: () => void = () => {}): void => { process.send?.(message, then) }
// Enough connections that queued requests wait on the server, not on this client's pool.
const dispatcher = new Agent({ connections: 256, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 120_000, bodyTimeout: 120_000 })

const latenciesMs: number[] = []
const inFlight = new Set<Promise<void>>()
let sent = 0
let failed = 0
let firstError: string | null = null
let maxClientLagMs = 0
const slow: Array<[number, number]> = []
let startedAt = performance.now()

async function check (): Promise<void> {
  const started = performance.now()
  try {
    const response = await request(url, { dispatcher })
    await response.body.text()
    if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}`)
    const latency = performance.now() - started
    latenciesMs.push(latency)
    if (latency > SLOW_MS && slow.length < 1000) slow.push([Math.round(started - startedAt), Math.round(latency)])
  } catch (error) {
    failed++
    firstError ??= (error as Error).message
  }
}

function fire (): void {
  sent++
  const pending = check()
  inFlight.add(pending)
  pending.finally(() => inFlight.delete(pending))
}

// Warm the connection and the code path before the parent starts measuring.
await check()
await check()
latenciesMs.length = 0
failed = 0
firstError = null

startedAt = performance.now()
slow.length = 0
let tick = 0
let timer: NodeJS.Timeout | null = null
let stopping = false
function schedule (): void {
  if (stopping) return
  tick++
  const due = startedAt + tick * interval
  timer = setTimeout(() => {
    maxClientLagMs = Math.max(maxClientLagMs, performance.now() - due)
    fire()
    schedule()
  }, Math.max(0, due - performance.now()))
}
fire()
schedule()
send({ type: 'ready' })

process.on('message', (message: HealthRequest) => {
  if (message.type !== 'stop' || stopping) return
  stopping = true
  if (timer !== null) clearTimeout(timer)
  const durationMs = performance.now() - startedAt
  void Promise.allSettled([...inFlight]).then(async () => {
    await dispatcher.close()
    const result: HealthResult = { latenciesMs, sent, failed, firstError, maxClientLagMs, durationMs, slow }
    send({ type: 'result', ...result }, () => process.exit(0))
  })
})
process.on('disconnect', () => process.exit(0))
