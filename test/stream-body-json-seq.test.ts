import t, { type Test } from 'tap'
import { Readable } from 'node:stream'
import { Client } from 'undici'
import { bodyApp, countingRoute, listen } from './helpers/server.js'
import { chunkings } from './helpers/chunking.js'

// application/json-seq (RFC 7464): records that start with RS (0x1E), one item each, through a
// real socket, streamed in every chunking and buffered, with the limits and errors of NDJSON.

const RS = '\x1e'
const seq = { 'content-type': 'application/json-seq' }

interface Answer { status: number, json: Record<string, unknown> }

async function post (client: Client, chunks: Buffer[], path = '/import', headers: Record<string, string> = seq): Promise<Answer> {
  const length = chunks.reduce((n, c) => n + c.length, 0)
  const res = await client.request({
    method: 'POST', path, headers: { ...headers, 'content-length': String(length) },
    body: Readable.from(chunks, { objectMode: false })
  })
  return { status: res.statusCode, json: await res.body.json() as Record<string, unknown> }
}

/** Every chunking of `body` through one keep-alive connection, streamed and buffered. */
async function everyChunking (t: Test, body: string, check: (answer: Answer, name: string) => void, options: Record<string, unknown> = {}): Promise<void> {
  const buf = Buffer.from(body)
  for (const streamThreshold of [0, 1024 * 1024]) {
    const app = await bodyApp(t, { streamThreshold, batchSize: 2, ...options })
    countingRoute(app)
    const client = new Client(await listen(app))
    t.teardown(() => client.close())
    for (const { name, chunks } of chunkings(buf, { byteByByteUpTo: 200, twoWaySplitsUpTo: 40, randomSplits: 4 })) {
      check(await post(client, chunks), `${streamThreshold === 0 ? 'streamed' : 'buffered'}, ${name}`)
    }
  }
}

t.test('each record is an item, in every chunking, streamed and buffered', async t => {
  const body = `${RS}{"id":1,"name":"é"}\n${RS}[1,\n2]\n${RS}\n${RS}"😀"\n${RS}null\n`
  const wrong: string[] = []
  await everyChunking(t, body, (answer, name) => {
    if (answer.status !== 200 || JSON.stringify(answer.json.items) !== JSON.stringify([{ id: 1, name: 'é' }, [1, 2], '😀', null])) {
      wrong.push(`${name}: ${answer.status} ${JSON.stringify(answer.json)}`)
    }
  })
  t.same(wrong, [])
})

t.test('a record that is not JSON is a 400 naming the record and byte offset, in every chunking', async t => {
  const wrong: string[] = []
  await everyChunking(t, `${RS}1\n${RS}{"a":}\n${RS}3\n`, (answer, name) => {
    if (answer.status !== 400 || answer.json.code !== 'FST_NEXURE_INVALID_JSON' || !/at byte offset 9 \(record 2\)$/.test(String(answer.json.message))) {
      wrong.push(`${name}: ${answer.status} ${JSON.stringify(answer.json)}`)
    }
  })
  t.same(wrong, [])
})

t.test('text before the first RS is refused', async t => {
  const app = await bodyApp(t, { streamThreshold: 0 })
  countingRoute(app)
  const client = new Client(await listen(app))
  t.teardown(() => client.close())
  const answer = await post(client, [Buffer.from(`{"a":1}\n${RS}2\n`)])
  t.equal(answer.status, 400)
  t.match(answer.json, { code: 'FST_NEXURE_INVALID_JSON', message: /start each record with RS \(0x1E\) at byte offset 0/ })
})

t.test('limits: maxItemSize per record, bodyLimit, maxDepth; poisoning follows the server', async t => {
  for (const streamThreshold of [0, 1024 * 1024]) {
    const mode = streamThreshold === 0 ? 'streamed' : 'buffered'
    const app = await bodyApp(t, { streamThreshold, maxItemSize: 32, maxDepth: 3 })
    countingRoute(app)
    app.post('/small', { bodyLimit: 64 }, async request => {
      let n = 0
      for await (const batch of request.batches()) n += batch.length
      return { n }
    })
    const client = new Client(await listen(app))
    t.teardown(() => client.close())
    const large = await post(client, [Buffer.from(`${RS}1\n${RS}"${'x'.repeat(40)}"\n`)])
    t.equal(large.status, 413, `${mode}: a record past maxItemSize`)
    t.match(large.json, { code: 'FST_NEXURE_ITEM_TOO_LARGE', message: /a record starting at byte offset 4 \(record 2\) exceeds maxItemSize of 32 bytes/ })
    const deep = await post(client, [Buffer.from(`${RS}[[[[1]]]]\n`)])
    t.match(deep, { status: 400, json: { code: 'FST_NEXURE_INVALID_JSON', message: /maxDepth.*byte offset 4 \(record 1\)/ } }, `${mode}: nesting past maxDepth`)
    const poisoned = await post(client, [Buffer.from(`${RS}{"a":1}\n${RS}{"__proto__":{"x":1}}\n`)])
    t.match(poisoned, { status: 400, json: { code: 'FST_NEXURE_FORBIDDEN_PROPERTY', message: /byte offset 10 \(record 2\)/ } }, `${mode}: __proto__`)
    const tooBig = await post(client, [Buffer.from(`${RS}1\n`.repeat(30))], '/small')
    t.match(tooBig, { status: 413, json: { code: 'FST_NEXURE_BODY_TOO_LARGE' } }, `${mode}: bodyLimit`)
  }
  const removing = await bodyApp(t, { streamThreshold: 0 }, { onProtoPoisoning: 'remove' })
  countingRoute(removing)
  const client = new Client(await listen(removing))
  t.teardown(() => client.close())
  const removed = await post(client, [Buffer.from(`${RS}{"__proto__":{"x":1},"b":2}\n`)])
  t.same(removed.json.items, [{ b: 2 }], 'onProtoPoisoning: remove')
})

t.test('batches({ path }) on a JSON sequence is a 415', async t => {
  const app = await bodyApp(t)
  app.post('/import', async request => {
    for await (const batch of request.batches({ path: 'items' })) return batch
    return []
  })
  const res = await app.inject({ method: 'POST', url: '/import', headers: seq, payload: `${RS}1\n` })
  t.equal(res.statusCode, 415)
  t.match(res.json().message, /NDJSON and JSON sequences have no paths/)
})
