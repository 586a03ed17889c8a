import t from 'tap'
import { BufferPool } from '../../lib/core/buffer-pool.js'

t.test('defaults: 64 KiB slabs, at most 10 pooled', async t => {
  const pool = new BufferPool()
  t.equal(pool.slabSize, 64 * 1024)
  t.equal(pool.maxPooled, 10)
  const slab = pool.acquire()
  t.equal(slab.length, 64 * 1024)
  t.same(pool.stats, { hits: 0, misses: 1, inUse: 1, pooled: 0, dropped: 0, refused: 0 })
})

t.test('a released slab is reused, and zero-filled before it is handed out again', async t => {
  const pool = new BufferPool({ slabSize: 16 })
  const a = pool.acquire()
  a.write('secret request 1')
  t.ok(pool.release(a))
  t.same(pool.stats, { hits: 0, misses: 1, inUse: 0, pooled: 1, dropped: 0, refused: 0 })
  const b = pool.acquire()
  t.equal(b, a, 'the same slab comes back')
  t.ok(b.every(byte => byte === 0), 'and it holds no byte of the previous user')
  t.same(pool.stats, { hits: 1, misses: 1, inUse: 1, pooled: 0, dropped: 0, refused: 0 })
})

t.test('fresh slabs are zero-filled and never overlap', async t => {
  const pool = new BufferPool({ slabSize: 32 })
  const slabs = Array.from({ length: 20 }, () => pool.acquire())
  for (const slab of slabs) t.ok(slab.every(byte => byte === 0))
  for (const slab of slabs) slab.fill(7)
  slabs[0]!.fill(1)
  t.ok(slabs.slice(1).every(slab => slab.every(byte => byte === 7)), 'writing one slab touches no other')
  t.equal(new Set(slabs.map(s => s.buffer)).size, slabs.length, 'each slab has its own memory')
})

t.test('a double release is refused: the same memory never goes to two users', async t => {
  const pool = new BufferPool({ slabSize: 8 })
  const a = pool.acquire()
  t.ok(pool.release(a))
  t.notOk(pool.release(a), 'second release refused')
  t.equal(pool.stats.refused, 1)
  t.equal(pool.stats.pooled, 1, 'pooled once, not twice')
  const x = pool.acquire()
  const y = pool.acquire()
  t.not(x, y, 'two acquires after a double release get different slabs')
})

t.test('a buffer the pool did not hand out is refused, even of the right size', async t => {
  const pool = new BufferPool({ slabSize: 8 })
  t.notOk(pool.release(Buffer.alloc(8)))
  t.equal(pool.stats.refused, 1)
  t.equal(pool.stats.pooled, 0)
  const other = new BufferPool({ slabSize: 8 })
  const foreign = other.acquire()
  t.notOk(pool.release(foreign), 'a slab of another pool is refused')
  t.equal(pool.stats.refused, 2)
  t.ok(other.release(foreign), 'and still goes back to its own pool')
})

t.test('a slab of the wrong size is refused', async t => {
  const pool = new BufferPool({ slabSize: 8 })
  const slab = pool.acquire()
  t.notOk(pool.release(slab.subarray(0, 4)), 'a view of part of a slab is refused')
  t.notOk(pool.release(Buffer.alloc(16)))
  t.equal(pool.stats.refused, 2)
  t.equal(pool.stats.inUse, 1, 'the slab itself is still lent out')
  t.ok(pool.release(slab))
})

t.test('at most maxPooled free slabs are kept; the rest are dropped', async t => {
  const pool = new BufferPool({ slabSize: 8, maxPooled: 2 })
  const slabs = [pool.acquire(), pool.acquire(), pool.acquire()]
  for (const slab of slabs) t.ok(pool.release(slab))
  t.same(pool.stats, { hits: 0, misses: 3, inUse: 0, pooled: 2, dropped: 1, refused: 0 })
})

t.test('maxPooled 0 turns pooling off', async t => {
  const pool = new BufferPool({ slabSize: 8, maxPooled: 0 })
  const a = pool.acquire()
  t.ok(pool.release(a))
  const b = pool.acquire()
  t.not(a, b)
  t.same(pool.stats, { hits: 0, misses: 2, inUse: 1, pooled: 0, dropped: 1, refused: 0 })
})

t.test('invalid options are refused at construction', async t => {
  // The one option checker's error and wording, as for every other option.
  t.throws(() => new BufferPool({ slabSize: 0 }), { code: 'FST_NEXURE_INVALID_OPTION', message: /slabSize of new BufferPool\(\): expected a positive integer, got 0/ })
  t.throws(() => new BufferPool({ slabSize: 1.5 }), { code: 'FST_NEXURE_INVALID_OPTION', message: /slabSize of new BufferPool\(\)/ })
  t.throws(() => new BufferPool({ maxPooled: -1 }), { code: 'FST_NEXURE_INVALID_OPTION', message: /maxPooled of new BufferPool\(\): expected a non-negative integer, got -1/ })
  t.throws(() => new BufferPool({ maxPooled: '3' as unknown as number }), { code: 'FST_NEXURE_INVALID_OPTION', message: /got "3"/ })
  t.same(new BufferPool({}).slabSize, 64 * 1024, 'the defaults')
  t.same(new BufferPool().maxPooled, 10)
})
