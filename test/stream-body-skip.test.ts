import t, { type Test } from 'tap'
import { Readable } from 'node:stream'
import Fastify from 'fastify'
import { Client } from 'undici'
import { streamBody } from '../lib/index.js'
import { bodyApp, listen } from './helpers/server.js'
import { chunkings } from './helpers/chunking.js'

// onInvalidItem: 'skip' leaves out the records that are not JSON and the items that fail
// itemSchema, and says which in request.streamStats; past maxSkipped the body fails as with
// 'fail'. Through a real socket, streamed in every chunking and buffered.

const RS = '\x1e'
const itemSchema = { type: 'object', required: ['id'], properties: { id: { type: 'integer' } } }

interface Answer { status: number, json: Record<string, unknown> }

async function post (client: Client, chunks: Buffer[], type: string, path = '/import'): Promise<Answer> {
  const length = chunks.reduce((n, c) => n + c.length, 0)
  const res = await client.request({
    method: 'POST', path, headers: { 'content-type': type, 'content-length': String(length) },
    body: Readable.from(chunks, { objectMode: false })
  })
  return { status: res.statusCode, json: await res.body.json() as Record<string, unknown> }
}

async function skipApp (t: Test, streamThreshold: number, route: Record<string, unknown> = {}, plugin: Record<string, unknown> = { onInvalidItem: 'skip' }): Promise<Client> {
  const app = await bodyApp(t, { streamThreshold, batchSize: 2, ...plugin })
  app.post('/import', { config: { streamBody: { itemSchema, ...route } } }, async request => {
    const items: unknown[] = []
    for await (const batch of request.batches()) items.push(...batch)
    const stats = request.streamStats
    return { items, skipped: stats?.skipped, skippedItems: stats?.skippedItems, statsItems: stats?.items }
  })
  const client = new Client(await listen(app))
  t.teardown(() => client.close())
  return client
}

const ndjson = '{"id":1}\n{"id":\n\n{"id":"two"}\n{"id":3}\n[[[[[[1]]]]]]\n{"id":4}'
const ndjsonSkipped = [
  { index: 1, line: 2, offset: 15, code: 'FST_NEXURE_INVALID_JSON' },
  { index: 2, line: 4, offset: 17, code: 'FST_NEXURE_INVALID_ITEM' },
  { index: 4, line: 6, offset: 44, code: 'FST_NEXURE_INVALID_JSON' }
]

t.test('NDJSON: bad lines and items failing itemSchema are left out and reported, in every chunking', async t => {
  for (const streamThreshold of [0, 1024 * 1024]) {
    const client = await skipApp(t, streamThreshold, { maxDepth: 5 })
    const wrong: string[] = []
    for (const { name, chunks } of chunkings(Buffer.from(ndjson), { byteByByteUpTo: 100, twoWaySplitsUpTo: 30, randomSplits: 4 })) {
      const { status, json } = await post(client, chunks, 'application/x-ndjson')
      const skipped = (json.skippedItems as Array<Record<string, unknown>> | undefined)?.map(({ index, line, offset, code }) => ({ index, line, offset, code }))
      if (status !== 200 || JSON.stringify(json.items) !== JSON.stringify([{ id: 1 }, { id: 3 }, { id: 4 }]) ||
        json.skipped !== 3 || JSON.stringify(skipped) !== JSON.stringify(ndjsonSkipped) || json.statsItems !== 3) {
        wrong.push(`${name}: ${status} ${JSON.stringify(json)}`)
      }
    }
    t.same(wrong, [], streamThreshold === 0 ? 'streamed' : 'buffered')
  }
})

t.test('the messages of skipped items are the errors the body would have failed with', async t => {
  const client = await skipApp(t, 0)
  const { json } = await post(client, [Buffer.from('{"id":1}\n{"id":"x"}\n{nope}\n')], 'application/x-ndjson')
  t.match(json.skippedItems, [
    { code: 'FST_NEXURE_INVALID_ITEM', message: 'Item 1 is invalid: /id must be integer' },
    { code: 'FST_NEXURE_INVALID_JSON', message: /^Invalid JSON body: .* at byte offset 21 \(line 3\)$/ }
  ])
})

t.test('JSON sequences skip their bad records the same way', async t => {
  for (const streamThreshold of [0, 1024 * 1024]) {
    const client = await skipApp(t, streamThreshold)
    const body = `${RS}{"id":1}\n${RS}{oops\n${RS}{"id":2}\n${RS}{}\n`
    const { status, json } = await post(client, [Buffer.from(body)], 'application/json-seq')
    t.equal(status, 200)
    t.same(json.items, [{ id: 1 }, { id: 2 }])
    t.match(json.skippedItems, [{ index: 1, line: 2, offset: 12, code: 'FST_NEXURE_INVALID_JSON' }, { index: 3, line: 4, offset: 28, code: 'FST_NEXURE_INVALID_ITEM' }])
  }
})

t.test('a JSON array: items failing itemSchema are skipped by index; a malformed array still fails', async t => {
  for (const streamThreshold of [0, 1024 * 1024]) {
    const mode = streamThreshold === 0 ? 'streamed' : 'buffered'
    const client = await skipApp(t, streamThreshold)
    const { status, json } = await post(client, [Buffer.from('[{"id":1},{"id":"a"},{"x":0},{"id":2},{"id":3},{}]')], 'application/json')
    t.equal(status, 200, mode)
    t.same(json.items, [{ id: 1 }, { id: 2 }, { id: 3 }], mode)
    t.same((json.skippedItems as Array<Record<string, unknown>>).map(s => [s.index, s.line, s.offset, s.code]),
      [[1, null, null, 'FST_NEXURE_INVALID_ITEM'], [2, null, null, 'FST_NEXURE_INVALID_ITEM'], [5, null, null, 'FST_NEXURE_INVALID_ITEM']], mode)
    const broken = await post(client, [Buffer.from('[{"id":1},{"id":,{"id":2}]')], 'application/json')
    t.match(broken, { status: 400, json: { code: 'FST_NEXURE_INVALID_JSON' } }, `${mode}: the array's structure is lost`)
  }
})

t.test('past maxSkipped the body fails with the next bad item, saying so', async t => {
  for (const streamThreshold of [0, 1024 * 1024]) {
    const client = await skipApp(t, streamThreshold, { maxSkipped: 2 })
    const ok = await post(client, [Buffer.from('{"id":1}\nx\n{}\n{"id":2}\n')], 'application/x-ndjson')
    t.equal(ok.json.skipped, 2)
    const failed = await post(client, [Buffer.from('{"id":1}\nx\n{}\ny\n{"id":2}\n')], 'application/x-ndjson')
    t.equal(failed.status, 400)
    t.match(failed.json, { code: 'FST_NEXURE_INVALID_JSON', message: /\(line 4\) \(2 invalid items were skipped already; maxSkipped is 2\)$/ })
  }
})

t.test('skippedItems keeps the first 100; skipped counts them all', async t => {
  const client = await skipApp(t, 0, { maxSkipped: 1000 })
  const body = Array.from({ length: 150 }, (_, i) => i % 2 === 0 ? `{"id":${i}}` : 'bad').join('\n') + '\n'
  const { json } = await post(client, [Buffer.from(body)], 'application/x-ndjson')
  t.equal((json.items as unknown[]).length, 75)
  t.equal(json.skipped, 75)
  const items = await post(client, [Buffer.from(Array.from({ length: 250 }, () => 'x').join('\n'))], 'application/x-ndjson')
  t.equal(items.json.skipped, 250)
  t.equal((items.json.skippedItems as unknown[]).length, 100)
  t.match((items.json.skippedItems as unknown[])[99], { index: 99, line: 100 })
})

t.test("the default is 'fail'; a route may choose 'skip' and the plugin's choice is overridden", async t => {
  const failing = await skipApp(t, 0, {}, {})
  const failed = await post(failing, [Buffer.from('{"id":1}\nx\n')], 'application/x-ndjson')
  t.match(failed, { status: 400, json: { code: 'FST_NEXURE_INVALID_JSON' } })
  const routeSkips = await skipApp(t, 0, { onInvalidItem: 'skip' }, {})
  t.same((await post(routeSkips, [Buffer.from('{"id":1}\nx\n')], 'application/x-ndjson')).json.items, [{ id: 1 }])
  const routeFails = await skipApp(t, 0, { onInvalidItem: 'fail' })
  t.equal((await post(routeFails, [Buffer.from('{"id":1}\nx\n')], 'application/x-ndjson')).status, 400)
})

t.test('the options are checked at registration', async t => {
  for (const [options, message] of [
    [{ onInvalidItem: 'ignore' }, /onInvalidItem: expected one of 'fail', 'skip', got "ignore"/],
    [{ maxSkipped: -1 }, /maxSkipped: expected a non-negative integer, got -1/]
  ] as const) {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => { await app.register(streamBody, options as never) }, { code: 'FST_NEXURE_INVALID_OPTION', message })
  }
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(streamBody)
  t.throws(() => app.post('/r', { config: { streamBody: { onInvalidItem: 'drop' as 'skip' } } }, async () => 'x'),
    { code: 'FST_NEXURE_INVALID_OPTION', message: /config\.streamBody\.onInvalidItem: expected one of 'fail', 'skip', got "drop"/ })
})
