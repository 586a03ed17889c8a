import t from 'tap'
import { readFile } from 'node:fs/promises'
import * as errors from '../lib/errors.js'
import type { FastifyError } from 'fastify'
import { errors as publicErrors } from '../lib/index.js'

// The README's errors table is the documentation users match codes against: every code defined
// in lib/errors.ts must be there with the same status, and nothing else.
// Each constructor takes its own message arguments; any two fill every placeholder.
const make = (E: unknown): FastifyError => new (E as new (...args: unknown[]) => FastifyError)('a', 1)

async function readmeTable (): Promise<Map<string, number>> {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
  const rows = new Map<string, number>()
  for (const match of readme.matchAll(/^\| `(FST_NEXURE_[A-Z_]+)` \| (\d{3}) \|/gm)) {
    rows.set(match[1]!, Number(match[2]))
  }
  return rows
}

t.test('every error is keyed by its own code, prefixed and with an HTTP status', async t => {
  const entries = Object.entries(errors)
  t.ok(entries.length > 0)
  for (const [key, ErrorCtor] of entries) {
    const err = make(ErrorCtor)
    t.equal(err.code, key, `${key} has code === key`)
    t.match(key, /^FST_NEXURE_[A-Z_]+$/)
    t.type(err.statusCode, 'number', `${key} has a status`)
    t.ok(err.statusCode! >= 400 && err.statusCode! < 600, `${key} status is an error status`)
    t.ok(err instanceof Error)
    t.ok(err instanceof (ErrorCtor as unknown as typeof Error), `${key} supports instanceof`)
  }
})

t.test('the README errors table lists exactly the defined errors, with their statuses', async t => {
  const table = await readmeTable()
  const defined = new Map(Object.entries(errors).map(([key, E]) => [key, make(E).statusCode]))
  t.same([...table.keys()].sort(), [...defined.keys()].sort(), 'same codes in both')
  for (const [code, status] of defined) t.equal(table.get(code), status, `${code} documented as ${String(status)}`)
})

t.test('the public entry point exports the same errors', async t => {
  t.same(Object.keys(publicErrors).sort(), Object.keys(errors).sort())
  for (const key of Object.keys(errors)) {
    t.equal(publicErrors[key as keyof typeof errors], errors[key as keyof typeof errors])
  }
})

t.test('messages say what and where', async t => {
  const err = new errors.FST_NEXURE_BODY_TOO_LARGE('body of 2000 bytes', 1000)
  t.equal(err.message, 'Request body is too large: body of 2000 bytes exceeds the limit of 1000 bytes')
  t.equal(err.statusCode, 413)
})
