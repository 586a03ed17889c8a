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

expectAssignable<object>(streamBody)
expectAssignable<object>(streamUpload)
