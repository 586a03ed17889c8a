import { expectAssignable, expectError, expectType } from 'tsd'
import { BufferPool, errors, streamBody, streamUpload, type BufferPoolStats } from 'nexure'

const pool = new BufferPool({ slabSize: 1024, maxPooled: 4 })
expectType<Buffer>(pool.acquire())
expectType<boolean>(pool.release(Buffer.alloc(1024)))
expectType<BufferPoolStats>(pool.stats)
expectType<number>(pool.stats.inUse)
expectError(new BufferPool({ slabSize: '64k' }))
expectError(new BufferPool({ maxSlabs: 3 }))

const err = new errors.FST_NEXURE_BODY_TOO_LARGE('body', 10)
expectType<'FST_NEXURE_BODY_TOO_LARGE'>(err.code)
expectType<413>(err.statusCode)
expectAssignable<Error>(err)

// Request-time mistakes: the client's content type (415) and the application's argument (500).
expectType<415>(new errors.FST_NEXURE_UNSUPPORTED_MEDIA_TYPE('application/x-ndjson', 'a JSON body').statusCode)
const argument = new errors.FST_NEXURE_INVALID_ARGUMENT('request.batches({ size })', 'must be a positive integer')
expectType<'FST_NEXURE_INVALID_ARGUMENT'>(argument.code)
expectType<500>(argument.statusCode)
expectError(new errors.FST_NEXURE_INVALID_ARGUMENT('request.batches({ size })', 0))

expectAssignable<object>(streamBody)
expectAssignable<object>(streamUpload)
