import Fastify, { type FastifyRequest } from 'fastify'
import { Transform, type Readable } from 'node:stream'
import { expectAssignable, expectError, expectType } from 'tsd'
import { BufferPool, FilterEngine, NdjsonSplitter, streamBody, type BatchesOptions, type FilterEngineOptions, type PathFilter, type SkippedItem, type StreamBodyOptions, type StreamStats } from 'nexure'

const app = Fastify()

// Options: every field typed; wrong types and unknown keys refused.
app.register(streamBody)
app.register(streamBody, { streamThreshold: 1024, batchSize: 10, bodyLimit: 1e9, maxItemSize: 1e6, maxDepth: 64 })
app.register(streamBody, { maxBufferSize: 65536, streamChunkSize: 16384, drainLimit: 0, rawContentTypes: ['text/csv'] })
app.register(streamBody, { pool: new BufferPool(), transforms: [(request, reply) => new Transform()] })
app.register(streamBody, { pool: false })
app.register(streamBody, { bodyTimeout: 60_000, idleTimeout: 5_000, underPressure: { maxEventLoopDelay: 50, maxHeapUsedBytes: 1e9, sampleInterval: 100 } })
app.register(streamBody, { underPressure: false })
expectError(app.register(streamBody, { underPressure: true }))
expectError(app.register(streamBody, { underPressure: { maxDelay: 5 } }))
expectError(app.register(streamBody, { batchSize: '10' }))
app.register(streamBody, { batchSize: 500, batchBytes: 64 * 1024 })
app.register(streamBody, { batchBytes: Infinity })
expectError(app.register(streamBody, { batchBytes: '64KB' }))
expectError(app.register(streamBody, { streamThreshold: true }))
expectError(app.register(streamBody, { pool: true }))
expectError(app.register(streamBody, { transforms: [() => 'not a stream'] }))
expectError(app.register(streamBody, { batchsize: 10 }))
expectAssignable<StreamBodyOptions>({ streamThreshold: 0 })
app.register(streamBody, { onInvalidItem: 'skip', maxSkipped: 10 })
app.register(streamBody, { onInvalidItem: 'fail' })
expectError(app.register(streamBody, { onInvalidItem: 'ignore' }))
expectError(app.register(streamBody, { maxSkipped: '10' }))

// The request decorations, inside real route handlers.
interface Row { id: number, name: string }
app.post('/import', async (request) => {
  expectType<AsyncIterableIterator<unknown[]>>(request.batches())
  for await (const batch of request.batches<Row>({ path: 'items', size: 100 })) {
    expectType<Row[]>(batch)
    expectType<number>(batch[0]!.id)
  }
  expectType<Readable>(request.bodyStream())
  expectType<StreamStats | null>(request.streamStats)
  expectType<number | undefined>(request.streamStats?.skipped)
  expectType<SkippedItem[] | undefined>(request.streamStats?.skippedItems)
  const skipped = request.streamStats!.skippedItems[0]!
  expectType<number>(skipped.index)
  expectType<number | null>(skipped.line)
  expectType<number | null>(skipped.offset)
  expectType<string>(skipped.code)
  expectType<string>(skipped.message)
  expectError(request.batches({ size: '10' }))
  expectError(request.batches({ pathh: 'x' }))
  // Selection anywhere: a RegExp on the dotted path, or a function of the segments.
  for await (const batch of request.batches<Row>({ filter: /^groups\.\d+\.members\.\d+$/, size: 50 })) {
    expectType<Row[]>(batch)
  }
  request.batches({
    filter: path => {
      expectType<readonly (string | number)[]>(path)
      return path[path.length - 1] === 'members'
    }
  })
  expectError(request.batches({ filter: 'groups.*' }))
  expectError(request.batches({ filter: (path: string) => path === 'a' }))
  expectError(request.batches({ filter: () => 'yes' }))
  // Wildcard paths are strings like any path; entries give [key, value] pairs.
  for await (const batch of request.batches<Row>({ path: 'data.*.rows' })) expectType<Row[]>(batch)
  for await (const batch of request.batches<Row>({ path: 'users', entries: true, size: 10 })) {
    expectType<Array<[string, Row]>>(batch)
    expectType<string>(batch[0]![0])
    expectType<number>(batch[0]![1].id)
  }
  expectType<AsyncIterableIterator<Array<[string, unknown]>>>(request.batches({ entries: true }))
  expectType<AsyncIterableIterator<unknown[]>>(request.batches({ entries: false }))
  expectError(request.batches({ entries: 'yes' }))
  expectError(request.batches({ entries: 1 }))
  return null
})

// Per-route options through Fastify's route config.
app.post('/route', {
  config: { streamBody: { batchSize: 5, bodyLimit: 1024, streamThreshold: 0, maxItemSize: 10, maxDepth: 8, itemSchema: { type: 'object' }, transforms: [] } }
}, async (request) => request.streamStats)
expectError(app.post('/bad', { config: { streamBody: { batchSize: 'x' } } }, async () => null))
app.post('/bytes', { config: { streamBody: { batchBytes: 32 * 1024 } } }, async () => null)
expectError(app.post('/bad-bytes', { config: { streamBody: { batchBytes: null } } }, async () => null))
expectError(app.post('/bad2', { config: { streamBody: { itemSchema: 'x' } } }, async () => null))
app.post('/skip', { config: { streamBody: { onInvalidItem: 'skip', maxSkipped: 0 } } }, async () => null)
expectError(app.post('/bad3', { config: { streamBody: { onInvalidItem: true } } }, async () => null))

// The record splitter: NDJSON or JSON text sequences, with a skip hook.
new NdjsonSplitter({ format: 'json-seq', skip: (error, fault) => { expectType<number>(error.offset); expectType<number>(fault.line) } }, () => {})
new NdjsonSplitter({ skip: () => {}, accept: (value, index) => index > 0 ? null : new Error(String(value)) }, () => {})
expectError(new NdjsonSplitter({ format: 'csv' }, () => {}))

expectAssignable<BatchesOptions>({ path: 'data.rows' })
expectAssignable<BatchesOptions>({ filter: /rows/ })
expectAssignable<PathFilter>((path: readonly (string | number)[]) => path.length > 1)

// The filter engine on its own.
new FilterEngine({ filter: /^\d+$/, batchSize: 10, maxItemSize: 1e6, maxDepth: 64, protoAction: 'remove' } satisfies FilterEngineOptions, batch => { expectType<unknown[]>(batch) })
expectType<number>(new FilterEngine({ filter: () => true }, () => {}).itemCount)
expectError(new FilterEngine({ batchSize: 10 }, () => {}))
new FilterEngine({ filter: /x/, batchBytes: 65536 }, () => {})
new NdjsonSplitter({ batchSize: 100, batchBytes: Infinity }, () => {})
expectError(new NdjsonSplitter({ batchBytes: '1MB' }, () => {}))
expectError(new FilterEngine({ filter: /x/, path: 'a' }, () => {}))
expectAssignable<(options?: BatchesOptions) => AsyncIterableIterator<unknown[]>>(({} as FastifyRequest).batches<unknown>)
expectAssignable<BatchesOptions>({ path: 'data.*', entries: true })
