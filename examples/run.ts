// Runs one example by name: `npm run example -- <name> [its flags]`, i.e.
// `node dist/examples/run.js <name> [its flags]`. The name is taken out of process.argv before
// the example is imported, so the example's own parseArgs sees only its flags.

const EXAMPLES: Record<string, string> = {
  'bulk-import-sqlite': 'POST /import: a JSON array of any size into SQLite, one transaction per batch (?atomic=1: one for all)',
  'bulk-import-postgres': 'POST /import: a JSON array or NDJSON of any size into PostgreSQL with COPY FROM STDIN, at COPY\'s pace (PG* env)',
  'ndjson-ingest': 'POST /logs: NDJSON, gzip or not, counted per level while it streams',
  upload: 'POST /upload: multipart files of any size, answered with their sizes and SHA-256',
  'transform-stream': 'POST /transform: one NDJSON result line per batch while the body still streams in (full duplex)',
  'large-body-client': 'CLI: generates a JSON/NDJSON body of any size (--size 1GB) and POSTs it (--url) or writes it (--out)'
}

function list (): string {
  const width = Math.max(...Object.keys(EXAMPLES).map(name => name.length))
  const lines = Object.entries(EXAMPLES).map(([name, what]) => `  ${name.padEnd(width)}  ${what}`)
  return `Usage: npm run example -- <name> [flags]\n\nExamples:\n${lines.join('\n')}\n`
}

const name = process.argv[2]
if (name === undefined || !Object.hasOwn(EXAMPLES, name)) {
  if (name !== undefined) process.stderr.write(`Unknown example "${name}".\n\n`)
  process.stderr.write(list())
  process.exit(1)
}
process.argv.splice(2, 1)
await import(`./${name}.js`)
