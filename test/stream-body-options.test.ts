import t from 'tap'
import Fastify, { type FastifyRequest } from 'fastify'
import { streamBody, BufferPool } from '../lib/index.js'
import { bodyApp } from './helpers/server.js'

t.test('invalid plugin options are refused at registration', async t => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ batchSize: 0 }, /batchSize: expected a positive integer, got 0/],
    [{ batchBytes: 0 }, /batchBytes: expected a positive integer or Infinity, got 0/],
    [{ streamThreshold: -1 }, /streamThreshold/],
    [{ bodyLimit: '1mb' }, /bodyLimit: expected a positive integer, got "1mb"/],
    [{ maxItemSize: 1.5 }, /maxItemSize/],
    [{ maxDepth: 0 }, /maxDepth: expected a positive integer, got 0/],
    [{ transforms: [42] }, /transforms\[0\]: expected functions \(request, reply\) => Transform, got 42/],
    [{ pool: {} }, /pool: expected a BufferPool or false, got an object/],
    [{ rawContentTypes: ['not a type'] }, /rawContentTypes/],
    [{ batchsize: 10 }, /batchsize: unknown option \(known: streamThreshold, batchSize/]
  ]
  for (const [options, message] of cases) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(streamBody, options as never) }, { code: 'FST_NEXURE_INVALID_OPTION', message }, JSON.stringify(options))
    await app.close()
  }
})

t.test('the caller\'s options object is not modified', async t => {
  const options = Object.freeze({ batchSize: 5, transforms: Object.freeze([]) as never })
  const app = await bodyApp(t, options)
  await app.ready()
  t.same(options, { batchSize: 5, transforms: [] })
})

t.test('invalid route config is refused when the route is registered', async t => {
  const app = await bodyApp(t)
  t.throws(() => app.post('/x', { config: { streamBody: { batchSize: -5 } } }, async () => 'x'), { code: 'FST_NEXURE_INVALID_OPTION', message: /config\.streamBody\.batchSize/ })
  t.throws(() => app.post('/y', { config: { streamBody: { itemSchema: 'nope' } } } as never, async () => 'y'), { code: 'FST_NEXURE_INVALID_OPTION', message: /itemSchema/ })
  t.throws(() => app.post('/z', { config: { streamBody: { limit: 1 } } } as never, async () => 'z'), { code: 'FST_NEXURE_INVALID_OPTION', message: /limit: unknown option/ })
})

t.test('per-route options override the plugin\'s', async t => {
  const app = await bodyApp(t, { batchSize: 1000, streamThreshold: 1024 * 1024 })
  app.post('/r', { config: { streamBody: { batchSize: 3, streamThreshold: 0 } } }, async (request) => {
    const sizes: number[] = []
    for await (const batch of request.batches()) sizes.push(batch.length)
    return { sizes, streamed: request.body === undefined }
  })
  const res = await app.inject({ method: 'POST', url: '/r', payload: [1, 2, 3, 4, 5, 6, 7] })
  t.same(res.json(), { sizes: [3, 3, 1], streamed: true })
})

t.test('batchBytes: a streamed body\'s batches also end at the bytes their items took; the route\'s bound wins; a body read whole is cut by count', async t => {
  // 30 items of 99 bytes of JSON each (plus a comma between them).
  const items = Array.from({ length: 30 }, (_, i) => ({ i, pad: 'x'.repeat(99 - JSON.stringify({ i, pad: '' }).length) }))
  const payload = JSON.stringify(items)
  const app = await bodyApp(t, { batchSize: 8, batchBytes: 500 })
  const sizes = async (request: FastifyRequest): Promise<number[]> => {
    const out: number[] = []
    const filter = (request.query as { filter?: string }).filter === undefined ? {} : { filter: /^\d+$/ }
    for await (const batch of request.batches(filter)) out.push(batch.length)
    return out
  }
  app.post('/plugin', { config: { streamBody: { streamThreshold: 0 } } }, sizes)
  app.post('/route', { config: { streamBody: { streamThreshold: 0, batchBytes: 200 } } }, sizes)
  app.post('/off', { config: { streamBody: { streamThreshold: 0, batchBytes: Infinity } } }, sizes)
  app.post('/whole', sizes)
  const post = async (url: string, type = 'application/json', body = payload): Promise<number[]> => {
    const res = await app.inject({ method: 'POST', url, headers: { 'content-type': type }, payload: body })
    t.equal(res.statusCode, 200, url)
    return res.json()
  }
  t.same(await post('/plugin', 'application/x-ndjson', items.map(item => JSON.stringify(item)).join('\n')), [6, 6, 6, 6, 6], 'NDJSON: five lines take 495 bytes, the sixth crosses it')
  t.same(await post('/plugin?filter=1'), [6, 6, 6, 6, 6], 'batches({ filter }) streamed: the same')
  t.same(await post('/whole?filter=1'), [8, 8, 8, 6], 'batches({ filter }) on a body read whole: by count only')
  t.same(await post('/plugin'), [6, 6, 6, 6, 6], 'the plugin\'s 500 bytes: five items take 499, the sixth crosses it')
  t.same(await post('/route'), [3, 3, 3, 3, 3, 3, 3, 3, 3, 3], 'the route\'s 200 bytes: two take 199, the third crosses it')
  t.same(await post('/off'), [8, 8, 8, 6], 'Infinity: by count only')
  t.same(await post('/whole'), [8, 8, 8, 6], 'a body read whole: by count only')
  const bad = await bodyApp(t)
  t.throws(() => bad.post('/x', { config: { streamBody: { batchBytes: 1.5 } } }, async () => 'x'), { code: 'FST_NEXURE_INVALID_OPTION', message: /config\.streamBody\.batchBytes: expected a positive integer or Infinity, got 1\.5/ })
})

t.test('maxDepth: the route\'s bound wins, and buffered and streamed bodies answer alike', async t => {
  const app = await bodyApp(t, { maxDepth: 3 })
  for (const [url, streamThreshold] of [['/buffered', 1024], ['/streamed', 0]] as const) {
    app.post(url, { config: { streamBody: { maxDepth: 4, streamThreshold } } }, async (request) => {
      const items: unknown[] = []
      for await (const batch of request.batches()) items.push(...batch)
      return items
    })
  }
  for (const url of ['/buffered', '/streamed']) {
    const ok = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: '[[[[1]]]]' })
    t.same(ok.json(), [[[[1]]]], `${url}: four levels pass`)
    const deep = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: '[0,[[[[1]]]]]' })
    t.equal(deep.statusCode, 400, `${url}: five levels are a 400`)
    t.match(deep.json(), { code: 'FST_NEXURE_INVALID_JSON', message: /nested too deeply: more than 4 levels.*byte offset 6.*item 1/ })
  }
})

t.test('streamStats reports bytes, items, batches and pool use after a streamed body', async t => {
  const pool = new BufferPool()
  const app = await bodyApp(t, { streamThreshold: 0, pool })
  app.post('/s', async (request) => {
    for await (const _ of request.batches({ size: 100 })) { /* drain */ }
    return request.streamStats
  })
  const payload = JSON.stringify(Array.from({ length: 1000 }, (_, i) => ({ i })))
  const res = await app.inject({ method: 'POST', url: '/s', headers: { 'content-type': 'application/json' }, payload })
  const stats = res.json()
  t.equal(stats.bytesReceived, payload.length)
  t.equal(stats.bytesDecoded, payload.length)
  t.equal(stats.items, 1000)
  t.equal(stats.batches, 10)
  t.type(stats.durationMs, 'number')
  t.type(stats.poolHits, 'number')
  t.type(stats.poolMisses, 'number')
  t.equal(pool.stats.inUse, 0)
})

t.test('streamBody can be registered in two scopes with different options', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  for (const [prefix, batchSize] of [['/a', 2], ['/b', 5]] as const) {
    await app.register(async (scope) => {
      await scope.register(streamBody, { batchSize, streamThreshold: 0 })
      scope.post('/', async (request) => {
        const sizes: number[] = []
        for await (const batch of request.batches()) sizes.push(batch.length)
        return sizes
      })
    }, { prefix })
  }
  t.same((await app.inject({ method: 'POST', url: '/a', payload: [1, 2, 3] })).json(), [2, 1])
  t.same((await app.inject({ method: 'POST', url: '/b', payload: [1, 2, 3] })).json(), [3])
})
