import t from 'tap'
import Fastify from 'fastify'
import { JsonArrayScanner, NdjsonSplitter, streamBody, streamUpload } from '../lib/index.js'
import { integer, optionsObject, REGISTRATION, scopeOf } from '../lib/option-check.js'
import { bodyApp } from './helpers/server.js'

// Both plugins, both engines and request.batches() check their options with one checker: the
// same wrong value reads the same everywhere, only the name of the option differs.

async function registrationError (plugin: typeof streamBody | typeof streamUpload, options: unknown): Promise<Error & { code?: string }> {
  const app = Fastify()
  try {
    await app.register(plugin as typeof streamBody, options as never).ready()
  } catch (error) {
    return error as Error
  } finally {
    await app.close()
  }
  throw new Error(`registration with ${JSON.stringify(options)} did not fail`)
}

function thrown (fn: () => unknown): Error & { code?: string } {
  try {
    fn()
  } catch (error) {
    return error as Error
  }
  throw new Error('did not throw')
}

t.test('one wording for a bad number, in both plugins and both engines', async t => {
  const expectedWhy = 'expected a positive integer, got "10"'
  const errors = [
    await registrationError(streamBody, { batchSize: '10' }),
    thrown(() => new JsonArrayScanner({ batchSize: '10' as never }, () => {})),
    thrown(() => new NdjsonSplitter({ batchSize: '10' as never }, () => {}))
  ]
  for (const error of errors) {
    t.equal(error.code, 'FST_NEXURE_INVALID_OPTION')
    t.equal(error.message, `Invalid nexure option batchSize: ${expectedWhy}`)
  }
  const upload = await registrationError(streamUpload, { maxFiles: '10' })
  t.equal(upload.code, 'FST_NEXURE_INVALID_OPTION')
  t.equal(upload.message, 'Invalid nexure option maxFiles: expected a non-negative integer or Infinity, got "10"')
})

t.test('one wording for an unknown option, in both plugins and both engines', async t => {
  const errors = [
    await registrationError(streamBody, { batchsize: 1 }),
    await registrationError(streamUpload, { batchsize: 1 }),
    thrown(() => new JsonArrayScanner({ batchsize: 1 } as never, () => {})),
    thrown(() => new NdjsonSplitter({ batchsize: 1 } as never, () => {}))
  ]
  for (const error of errors) {
    t.equal(error.code, 'FST_NEXURE_INVALID_OPTION')
    t.match(error.message, /^Invalid nexure option batchsize: unknown option \(known: [a-zA-Z, ]+\)$/)
  }
})

t.test('both engines agree on batchSize: Infinity is not a batch size, for either', async t => {
  for (const make of [
    () => new JsonArrayScanner({ batchSize: Infinity }, () => {}),
    () => new NdjsonSplitter({ batchSize: Infinity }, () => {})
  ]) {
    t.match(thrown(make), { code: 'FST_NEXURE_INVALID_OPTION', message: /batchSize: expected a positive integer, got Infinity/ })
  }
  // maxItemSize and maxDepth may be Infinity in both (a whole body parsed at once has no item limit).
  t.doesNotThrow(() => new JsonArrayScanner({ maxItemSize: Infinity, maxDepth: Infinity }, () => {}))
  t.doesNotThrow(() => new NdjsonSplitter({ maxItemSize: Infinity, maxDepth: Infinity }, () => {}))
})

t.test('a route option is named with its place; an upload route option with its route', async t => {
  const app = await bodyApp(t)
  t.throws(() => app.post('/x', { config: { streamBody: { batchSize: 0 } } }, async () => 'x'),
    { code: 'FST_NEXURE_INVALID_OPTION', message: 'Invalid nexure option config.streamBody.batchSize: expected a positive integer, got 0' })
  t.throws(() => app.post('/y', { config: { streamBody: 'big' } } as never, async () => 'y'),
    { code: 'FST_NEXURE_INVALID_OPTION', message: 'Invalid nexure option config.streamBody: expected an object, got "big"' })
  const uploads = Fastify()
  t.teardown(() => uploads.close())
  await uploads.register(streamUpload)
  t.throws(() => uploads.post('/up', { config: { streamUpload: { maxFiles: -1 } } }, async () => 'x'),
    { code: 'FST_NEXURE_INVALID_OPTION', message: 'Invalid nexure option config.streamUpload.maxFiles of POST /up: expected a non-negative integer or Infinity, got -1' })
})

t.test('request.batches() refuses unknown options and wrong types, before it touches the body', async t => {
  const app = await bodyApp(t)
  app.post('/rows', async request => {
    const options = JSON.parse(request.headers['x-options'] as string) as unknown
    let n = 0
    for await (const batch of request.batches(options as never)) n += batch.length
    return { n }
  })
  const call = async (options: unknown): Promise<{ statusCode: number, body: { code?: string, message?: string, n?: number } }> => {
    const res = await app.inject({ method: 'POST', url: '/rows', headers: { 'x-options': JSON.stringify(options) }, payload: { entries: [1, 2] } })
    return { statusCode: res.statusCode, body: res.json() }
  }
  const unknown = await call({ entry: true })
  t.equal(unknown.statusCode, 500)
  t.equal(unknown.body.code, 'FST_NEXURE_INVALID_ARGUMENT')
  t.equal(unknown.body.message, 'Invalid argument to request.batches({ entry }) in the route handler: unknown option (known: size, path, entries, filter) (a mistake in the application, not in the request)')
  const wrongPath = await call({ path: 5 })
  t.equal(wrongPath.body.code, 'FST_NEXURE_INVALID_ARGUMENT')
  t.match(wrongPath.body.message, /^Invalid argument to request\.batches\(\{ path \}\) in the route handler: A path must be a string, got number/)
  const wrongSize = await call({ size: '2' })
  t.equal(wrongSize.body.message, 'Invalid argument to request.batches({ size }) in the route handler: expected a positive integer, got "2" (a mistake in the application, not in the request)')
  const wrongFilter = await call({ filter: 'entries.*' })
  t.equal(wrongFilter.body.message, 'Invalid argument to request.batches({ filter }) in the route handler: expected a RegExp or a function (path) => boolean, got "entries.*" (a mistake in the application, not in the request)')
  const wrongEntries = await call({ entries: 1 })
  t.equal(wrongEntries.body.message, 'Invalid argument to request.batches({ entries }) in the route handler: expected a boolean, got 1 (a mistake in the application, not in the request)')
  const notObject = await call('entries')
  t.equal(notObject.body.message, 'Invalid argument to request.batches(options) in the route handler: expected an object, got "entries" (a mistake in the application, not in the request)')
  // The right options still work, and so does none at all (JSON has no undefined: null is not "none").
  t.same((await call({ path: 'entries', size: 1 })).body, { n: 2 })
  t.same((await call(null)).body.code, 'FST_NEXURE_INVALID_ARGUMENT')
})

t.test('the checker: integers, Infinity where allowed, objects with known keys only', async t => {
  t.equal(integer(REGISTRATION, 'n', undefined, 7, { min: 1 }), 7)
  t.equal(integer(REGISTRATION, 'n', 0, 7, { min: 0 }), 0)
  t.equal(integer(REGISTRATION, 'n', Infinity, 7, { min: 0, infinity: true }), Infinity)
  for (const bad of [0, -1, 1.5, NaN, Infinity, '3', null, 2 ** 53]) {
    t.throws(() => integer(REGISTRATION, 'n', bad, 7, { min: 1 }), { code: 'FST_NEXURE_INVALID_OPTION', message: /^Invalid nexure option n: expected a positive integer, got / }, String(bad))
  }
  t.same(optionsObject(REGISTRATION, undefined, new Set(['a'])), {})
  t.throws(() => optionsObject(scopeOf('outer.'), [], new Set(['a'])), { message: 'Invalid nexure option outer: expected an object, got an array' })
  t.throws(() => optionsObject(scopeOf('outer.'), { b: 1 }, new Set(['a'])), { message: 'Invalid nexure option outer.b: unknown option (known: a)' })
  t.same(optionsObject(REGISTRATION, { a: 1, prefix: '/x' }, new Set(['a']), new Set(['prefix'])), { a: 1, prefix: '/x' })
})
