import t from 'tap'
import { Readable } from 'node:stream'
import sjson from 'secure-json-parse'
import { bodyApp } from './helpers/server.js'
import { chunkings } from './helpers/chunking.js'
import { JsonGen } from './helpers/json-gen.js'

// The engines have their own differential tests; this one proves the plugin adds nothing of its
// own: through content-type parsing, the stream pipeline and batching, a streamed body gives
// exactly what the buffered path (and JSON.parse) gives, for every chunking, or the same refusal.

type Outcome = { items: unknown[] } | { status: number, code: string }

function reference (body: Buffer): Outcome {
  try {
    const value = sjson.parse(body.toString('utf8'), null, { protoAction: 'error', constructorAction: 'error' })
    return { items: Array.isArray(value) ? value : [value] }
  } catch {
    return { status: 400, code: 'invalid' }
  }
}

t.test('streamed and buffered bodies give the reference items, whatever the chunking', async t => {
  const streamed = await bodyApp(t, { streamThreshold: 0, batchSize: 3 })
  const buffered = await bodyApp(t, { batchSize: 3 })
  for (const app of [streamed, buffered]) {
    app.post('/items', async (request) => {
      const items: unknown[] = []
      for await (const batch of request.batches()) {
        if (batch.length > 3) throw new Error('batch larger than batchSize')
        items.push(...batch)
      }
      return { items }
    })
  }
  const send = async (app: typeof streamed, chunks: Buffer[]): Promise<Outcome> => {
    const length = chunks.reduce((n, c) => n + c.length, 0)
    const res = await app.inject({
      method: 'POST',
      url: '/items',
      headers: { 'content-type': 'application/json', 'content-length': String(length) },
      payload: Readable.from(chunks)
    })
    if (res.statusCode === 200) return { items: res.json().items }
    const code = res.json().code as string
    t.match(code, /^FST_NEXURE_(INVALID_JSON|EMPTY_BODY|FORBIDDEN_PROPERTY)$/, `refusal code ${code}`)
    return { status: res.statusCode, code: 'invalid' }
  }
  const gen = new JsonGen(42)
  let cases = 0
  for (let k = 0; k < 60; k++) {
    const text = k % 3 === 0 ? gen.value() : gen.array(1, 1 + gen.int(8))
    const body = k % 4 === 3 ? gen.mutate(Buffer.from(text)) : Buffer.from(text)
    const expected = reference(body)
    t.same(await send(buffered, [body]), expected, `buffered #${k}`)
    for (const { name, chunks } of chunkings(body, { seed: k, randomSplits: 2, byteByByteUpTo: 256, twoWaySplitsUpTo: 0 })) {
      t.same(await send(streamed, chunks), expected, `streamed #${k} ${name}`)
      cases++
    }
  }
  t.ok(cases > 200, `${cases} streamed cases`)
})

t.test('JSON sequences and skipping NDJSON, streamed and buffered, give the reference items for every chunking', async t => {
  const options = { batchSize: 3, onInvalidItem: 'skip' as const }
  const streamed = await bodyApp(t, { streamThreshold: 0, ...options })
  const buffered = await bodyApp(t, options)
  for (const app of [streamed, buffered]) {
    app.post('/items', async (request) => {
      const items: unknown[] = []
      for await (const batch of request.batches()) items.push(...batch)
      return { items, skipped: request.streamStats?.skipped }
    })
  }
  const send = async (app: typeof streamed, chunks: Buffer[], type: string): Promise<unknown> => {
    const length = chunks.reduce((n, c) => n + c.length, 0)
    const res = await app.inject({ method: 'POST', url: '/items', headers: { 'content-type': type, 'content-length': String(length) }, payload: Readable.from(chunks) })
    return res.statusCode === 200 ? res.json() : { status: res.statusCode, code: res.json().code }
  }
  const gen = new JsonGen(7)
  let cases = 0
  for (let k = 0; k < 30; k++) {
    const values = Array.from({ length: 1 + gen.int(6) }, () => gen.value())
    // Some records damaged past parsing: skipped, and counted.
    const damaged = values.map((value, i) => (k + i) % 4 === 3 ? value + ',}' : value)
    const good = damaged.flatMap(text => { try { return [sjson.parse(text, null, { protoAction: 'error', constructorAction: 'error' })] } catch { return [] } })
    const expected = { items: good, skipped: damaged.length - good.length }
    const bodies: Array<[string, Buffer]> = [
      ['application/json-seq', Buffer.from(damaged.map(text => `\x1e${text}\n`).join(''))],
      ['application/x-ndjson', Buffer.from(damaged.map(text => text.replace(/[\n\r]/g, ' ')).join('\n'))]
    ]
    for (const [type, body] of bodies) {
      t.same(await send(buffered, [body], type), expected, `buffered ${type} #${k}`)
      for (const { name, chunks } of chunkings(body, { seed: k, randomSplits: 2, byteByByteUpTo: 128, twoWaySplitsUpTo: 0 })) {
        t.same(await send(streamed, chunks, type), expected, `streamed ${type} #${k} ${name}`)
        cases++
      }
    }
  }
  t.ok(cases > 100, `${cases} streamed cases`)
})
