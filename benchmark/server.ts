import { buildApp, isApproach, type NexureTuning } from './approaches.js'
import { serveToParent } from './child-server.js'

// One JSON benchmark server, forked by bench.ts with `<approach> <bodyLimit> [nexure tuning as JSON]`.

const [approach = '', bodyLimitText = '', tuningText = '{}'] = process.argv.slice(2)
if (!isApproach(approach) || !/^\d+$/.test(bodyLimitText)) {
  console.error(`usage (forked by bench.js): server.js <standard|naive|nexure> <bodyLimit> [tuning JSON], got ${process.argv.slice(2).join(' ')}`)
  process.exit(2)
}
// JSON has no Infinity: null stands for it.
const tuning = JSON.parse(tuningText, (_key, value: unknown) => value === null ? Infinity : value) as NexureTuning
await serveToParent(await buildApp(approach, Number(bodyLimitText), tuning))
