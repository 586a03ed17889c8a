import { buildApp, isApproach } from './approaches.js'
import { serveToParent } from './child-server.js'

// One JSON benchmark server, forked by bench.ts with `<approach> <bodyLimit>`.

const [approach = '', bodyLimitText = ''] = process.argv.slice(2)
if (!isApproach(approach) || !/^\d+$/.test(bodyLimitText)) {
  console.error(`usage (forked by bench.js): server.js <standard|naive|nexure> <bodyLimit>, got ${process.argv.slice(2).join(' ')}`)
  process.exit(2)
}
await serveToParent(await buildApp(approach, Number(bodyLimitText)))
