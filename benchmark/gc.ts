import Fastify, { type FastifyInstance } from 'fastify'
import { constants, PerformanceObserver } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { streamBody } from 'nexure'
import { jsonArrayOf, TRAFFIC_APPS, TRAFFIC_LABELS, type TrafficApp } from './traffic-rows.js'
import { formatSize, parseSize } from './units.js'

// `npm run bench:gc`: the garbage a small body leaves. One process, two apps (Fastify alone,
// Fastify + streamBody), the same body sent with inject() in a loop, rounds alternating; the
// garbage collections of each round are counted with a PerformanceObserver on `gc` entries.

export interface GcRound {
  app: TrafficApp
  requests: number
  ms: number
  major: number
  minor: number
}

async function build (app: TrafficApp): Promise<FastifyInstance> {
  const server = Fastify({ bodyLimit: 16 * 1024 * 1024 })
  if (app === 'nexure') await server.register(streamBody)
  server.post('/json', async (request) => ({ items: Array.isArray(request.body) ? request.body.length : 1 }))
  await server.ready()
  return server
}

/** Runs `rounds` alternating rounds of `requests` inject() calls per app with a `size`-byte JSON array. */
export async function measureGarbage (size: number, requests: number, rounds: number): Promise<GcRound[]> {
  const body = jsonArrayOf(size)
  const apps = { fastify: await build('fastify'), nexure: await build('nexure') }
  let major = 0
  let minor = 0
  const observer = new PerformanceObserver(list => {
    for (const entry of list.getEntries()) {
      const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++
      else if (kind === constants.NODE_PERFORMANCE_GC_MINOR) minor++
    }
  })
  observer.observe({ entryTypes: ['gc'] })
  const run = async (app: TrafficApp, count: number): Promise<GcRound> => {
    major = minor = 0
    const started = performance.now()
    for (let i = 0; i < count; i++) {
      const response = await apps[app].inject({ method: 'POST', url: '/json', headers: { 'content-type': 'application/json' }, payload: body })
      if (response.statusCode !== 200) throw new Error(`${TRAFFIC_LABELS[app]}: ${response.statusCode} ${response.body}`)
    }
    const ms = performance.now() - started
    // GC entries are delivered asynchronously: let the last ones of this round arrive.
    await new Promise(resolve => setTimeout(resolve, 20))
    return { app, requests: count, ms, major, minor }
  }
  try {
    for (const app of TRAFFIC_APPS) await run(app, Math.min(500, requests))
    const results: GcRound[] = []
    for (let round = 0; round < rounds; round++) {
      for (const app of TRAFFIC_APPS) results.push(await run(app, requests))
    }
    return results
  } finally {
    observer.disconnect()
    await Promise.all(Object.values(apps).map(app => app.close()))
  }
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '100KB' },
      requests: { type: 'string', default: '10000' },
      rounds: { type: 'string', default: '2' }
    }
  })
  const size = parseSize(values.size)
  const requests = Number(values.requests)
  const rounds = Number(values.rounds)
  process.stderr.write(`nexure bench:gc: ${rounds} alternating rounds of ${requests} inject() requests with a ${formatSize(size)} JSON array, Node ${process.version}\n`)
  const results = await measureGarbage(size, requests, rounds)
  process.stdout.write('| Round | App | ms / request | major GCs | minor GCs |\n|--:|---|--:|--:|--:|\n')
  results.forEach((r, i) => {
    process.stdout.write(`| ${Math.floor(i / TRAFFIC_APPS.length) + 1} | ${TRAFFIC_LABELS[r.app]} | ${(r.ms / r.requests).toFixed(3)} | ${r.major} | ${r.minor} |\n`)
  })
  const total = (app: TrafficApp): number => results.filter(r => r.app === app).reduce((sum, r) => sum + r.major, 0)
  process.stdout.write(`\nmajor GCs, all rounds: ${TRAFFIC_LABELS.fastify} ${total('fastify')}, ${TRAFFIC_LABELS.nexure} ${total('nexure')}\n`)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
