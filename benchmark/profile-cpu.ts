import { mkdirSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { APPROACHES, buildApp, isApproach, ROUTE } from './approaches.js'
import { selfTimes, selfTimeTable, type CpuProfile } from './cpu-profile.js'
import { runClient } from './processes.js'
import { sendJsonArray } from './send-json.js'
import { formatSize, parseSize } from './units.js'

// `npm run profile:cpu -- --approach nexure --size 50MB`: the server runs in this process under
// the V8 sampling profiler (node:inspector) while a client process sends one body; the profile
// is written as a .cpuprofile for Chrome DevTools, and the ten functions with the most self
// time are printed.

const HELP = `Usage: npm run profile:cpu -- [options]

  --approach NAME   standard, naive or nexure (default: nexure)
  --size SIZE       body size, e.g. 50MB (default), 500MB, 2GB
  --interval US     sampling interval in microseconds (default: 500)
  --top N           how many functions to print (default: 10)
  --warmups N       requests of --warmup-size before the profiled one (default: 1; 0 profiles
                    the first request of the process, cold)
  --warmup-size S   body size of each warm-up request (default: 2MB)
  --out DIR         where to write <approach>-<size>.cpuprofile (default: benchmark/results)
  -h, --help        this text
`

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url))

const { values } = parseArgs({
  options: {
    approach: { type: 'string', default: 'nexure' },
    size: { type: 'string', default: '50MB' },
    interval: { type: 'string', default: '500' },
    top: { type: 'string', default: '10' },
    warmups: { type: 'string', default: '1' },
    'warmup-size': { type: 'string', default: '2MB' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false }
  }
})

async function main (): Promise<number> {
  if (values.help === true) {
    process.stdout.write(HELP)
    return 0
  }
  const approach = values.approach ?? 'nexure'
  if (!isApproach(approach)) throw new Error(`unknown approach ${JSON.stringify(approach)} (known: ${APPROACHES.join(', ')})`)
  const size = parseSize(values.size ?? '50MB')
  const interval = Number(values.interval)
  const top = Number(values.top)
  if (!Number.isInteger(interval) || interval < 50) throw new Error('--interval must be an integer of at least 50 (microseconds)')
  if (!Number.isInteger(top) || top < 1) throw new Error('--top must be a positive integer')
  const outDir = path.resolve(values.out ?? path.join(PACKAGE_ROOT, 'benchmark', 'results'))

  const warmups = Number(values.warmups)
  if (!Number.isInteger(warmups) || warmups < 0) throw new Error('--warmups must be a non-negative integer')
  const warmupBytes = parseSize(values['warmup-size'] ?? '2MB')
  const app = await buildApp(approach, Math.max(size, warmupBytes) + 1024)
  const url = `${await app.listen({ port: 0, host: '127.0.0.1' })}${ROUTE}`
  const timeoutMs = 60_000 + Math.ceil(size / (1024 ** 2)) * 1000
  const session = new Session()
  try {
    for (let i = 0; i < warmups; i++) {
      const warmup = await sendJsonArray({ kind: 'json', url, size: warmupBytes, timeoutMs })
      if (!warmup.ok) throw new Error(`warm-up request failed: ${warmup.error}`)
    }
    session.connect()
    await session.post('Profiler.enable')
    await session.post('Profiler.setSamplingInterval', { interval })
    process.stderr.write(`profiling ${approach} taking a ${formatSize(size)} JSON array (client in its own process)...\n`)
    await session.post('Profiler.start')
    const result = await runClient({ kind: 'json', url, size, timeoutMs })
    const { profile } = await session.post('Profiler.stop')
    if (!result.ok) throw new Error(`the request failed: ${result.error} ${result.body ?? ''}`)

    mkdirSync(outDir, { recursive: true })
    const file = path.join(outDir, `${approach}-${formatSize(size)}.cpuprofile`)
    writeFileSync(file, JSON.stringify(profile))
    // Idle is the event loop waiting for the socket: no function's time.
    const entries = selfTimes(profile as CpuProfile, PACKAGE_ROOT).filter(e => e.functionName !== '(idle)')
    const busy = entries.reduce((sum, e) => sum + e.selfMs, 0)
    process.stdout.write(`${approach}, ${formatSize(size)}: ${result.items} items in ${result.ms.toFixed(0)} ms (client's view); ` +
      `server busy ${busy.toFixed(0)} ms of ${((profile.endTime - profile.startTime) / 1000).toFixed(0)} ms profiled\n\n`)
    process.stdout.write(`Top ${top} functions by self time:\n\n${selfTimeTable(entries.slice(0, top))}\n`)
    process.stdout.write(`profile: ${file}\n(open it in Chrome DevTools: Performance panel, "Load profile...")\n`)
    return 0
  } finally {
    session.disconnect()
    await app.close()
  }
}

try {
  process.exitCode = await main()
} catch (error) {
  process.stderr.write(`nexure profile:cpu: ${(error as Error).message}\n`)
  process.exitCode = 1
}
