import { createServer } from 'node:net'
import { answerParent, serveToParent } from './child-server.js'
import { buildStandardImportApp, IMPORT_EXAMPLES, isImportApproach } from './import-approaches.js'

// One import benchmark server, forked by import.ts with `<approach> <bodyLimit> <insertRows>`.
// The database comes from the environment: PG* for PostgreSQL, DB for SQLite (as the examples
// read it). A nexure approach runs its example program itself, in this process, on a port
// picked here, so the peaks this process reports are the example's.

const [approach = '', bodyLimitText = '', insertRowsText = ''] = process.argv.slice(2)
if (!isImportApproach(approach) || !/^\d+$/.test(bodyLimitText) || !/^\d+$/.test(insertRowsText)) {
  console.error(`usage (forked by import.js): import-server.js <nexure-postgres|standard-postgres|nexure-sqlite> <bodyLimit> <insertRows>, got ${process.argv.slice(2).join(' ')}`)
  process.exit(2)
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise(resolve => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address')
  return address.port
}

if (approach === 'standard-postgres') {
  await serveToParent(await buildStandardImportApp(Number(bodyLimitText), Number(insertRowsText)))
} else {
  const port = await freePort()
  process.env.PORT = String(port)
  // The example listens before its module finishes evaluating (top-level await).
  await import(IMPORT_EXAMPLES[approach])
  answerParent(port, async () => {})
}
