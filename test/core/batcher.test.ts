import t from 'tap'
import { Batcher, DESTROYED } from '../../lib/core/batcher.js'
import { JsonArrayScanner } from '../../lib/core/array-scanner.js'
import { FilterEngine } from '../../lib/core/filter-engine.js'
import { NdjsonSplitter } from '../../lib/core/ndjson-splitter.js'

function batcher (size: number, maxBytes = Infinity): { b: Batcher, out: unknown[][] } {
  const out: unknown[][] = []
  return { b: new Batcher(size, maxBytes, batch => { out.push(batch) }, () => false), out }
}

t.test('items go out in batches of size, in order; flush hands out a short one, and nothing when empty', async t => {
  const { b, out } = batcher(3)
  for (let i = 0; i < 7; i++) b.push(i, 1)
  t.same(out, [[0, 1, 2], [3, 4, 5]])
  t.equal(b.pending, 1)
  t.equal(b.room, 2)
  t.equal(b.emitted, 6)
  b.flush()
  b.flush()
  t.same(out, [[0, 1, 2], [3, 4, 5], [6]])
  t.equal(b.emitted, 7)
  t.equal(b.pending, 0)
})

t.test('a run that is exactly one batch is handed on as it is; others are joined to the batch being filled', async t => {
  const { b, out } = batcher(3)
  const whole = [1, 2, 3]
  b.pushRun(whole, 3)
  t.equal(out[0], whole, 'the same array, not a copy')
  b.pushRun([4], 1)
  b.pushRun([5, 6], 2)
  t.same(out, [[1, 2, 3], [4, 5, 6]])
  t.not(out[1], whole)
  b.pushRun([7, 8], 2)
  b.pushRun([9, 10, 11].slice(0, b.room), 1)
  t.same(out.at(-1), [7, 8, 9])
})

t.test('clear forgets the batch being filled; a throwing onBatch still counts its batch as out; one that destroyed the engine stops it', async t => {
  const { b, out } = batcher(2)
  b.push('a', 1)
  b.clear()
  b.flush()
  t.same(out, [])
  const throwing = new Batcher(2, Infinity, () => { throw new Error('stop') }, () => false)
  throwing.push(1, 1)
  t.throws(() => throwing.push(2, 1), /stop/)
  t.equal(throwing.emitted, 2)
  t.equal(throwing.pending, 0)
  let destroyed = false
  const stopping = new Batcher(1, Infinity, () => { destroyed = true }, () => destroyed)
  let thrown: unknown = null
  try {
    stopping.push(1, 1)
  } catch (err) {
    thrown = err
  }
  t.equal(thrown, DESTROYED, 'an onBatch that destroyed its engine stops it with DESTROYED')
})

t.test('a batch goes out once its items took maxBytes bytes, passing it by at most its last item or run', async t => {
  const { b, out } = batcher(100, 10)
  b.push('a', 4)
  b.push('b', 4)
  t.equal(b.byteRoom, 2)
  t.same(out, [], 'under the bound: kept')
  b.push('c', 4)
  t.same(out, [['a', 'b', 'c']], '12 bytes of 10: out, with the item that crossed the bound')
  t.equal(b.byteRoom, 10, 'the next batch starts empty')
  const big = [1, 2]
  b.pushRun(big, 25)
  t.equal(out[1], big, 'a run over the bound into an empty batch is handed on as it is')
  b.push('d', 9)
  b.pushRun([3, 4], 2)
  t.same(out[2], ['d', 3, 4], 'a run joined to the batch being filled')
  b.push('e', 1)
  b.clear()
  t.equal(b.byteRoom, 10, 'clear forgets the bytes too')
  b.push('f', 9)
  b.flush()
  t.same(out.at(-1), ['f'], 'flush hands out what is under the bound')
  t.equal(b.byteRoom, 10)
})

// The engines cut their batches here, so each hands out batchSize items and a short batch only
// where its input ends (or, for the array scanner, where the streamed array does).
t.test('the three engines hand out batches of batchSize, the last one short', async t => {
  const json = Buffer.from(JSON.stringify(Array.from({ length: 10 }, (_, i) => ({ i }))))
  const ndjson = Buffer.from(Array.from({ length: 10 }, (_, i) => JSON.stringify({ i })).join('\n'))
  const engines = {
    scanner: (onItems: (items: unknown[]) => void) => new JsonArrayScanner({ batchSize: 4, maxParseBytes: 16 }, onItems),
    filter: (onItems: (items: unknown[]) => void) => new FilterEngine({ batchSize: 4, filter: /^\d+$/ }, onItems),
    splitter: (onItems: (items: unknown[]) => void) => new NdjsonSplitter({ batchSize: 4 }, onItems)
  }
  for (const [name, make] of Object.entries(engines)) {
    const sizes: number[] = []
    const engine = make(items => { sizes.push(items.length) })
    const body = name === 'splitter' ? ndjson : json
    for (let at = 0; at < body.length; at += 7) engine.write(body.subarray(at, at + 7))
    engine.end()
    t.same(sizes, [4, 4, 2], name)
    t.equal(engine.itemCount, 10, `${name} counts what it handed out`)
  }
})

t.test('the array scanner hands out the short last batch when the streamed array ends, before the rest of the body', async t => {
  const sizes: number[] = []
  const scanner = new JsonArrayScanner({ path: 'items', batchSize: 4 }, items => { sizes.push(items.length) })
  scanner.write(Buffer.from('{"items":[1,2,3,4,5,6],"tail":'))
  t.same(sizes, [4, 2])
  scanner.write(Buffer.from('"x"}'))
  scanner.end()
  t.same(sizes, [4, 2])
})

// Each engine tells the batcher the bytes of what it hands it: 10 items of 99 bytes each (one
// byte of separator between them) under a bound of 250 bytes go out 3 by 3, whether the array
// scanner walks the bytes or parses a guessed window unwalked, and whatever the chunking.
t.test('the three engines cut their batches at batchBytes as well as at batchSize', async t => {
  const items = Array.from({ length: 10 }, (_, i) => ({ i, pad: 'x'.repeat(99 - JSON.stringify({ i, pad: '' }).length) }))
  t.ok(items.every(item => JSON.stringify(item).length === 99), 'each item is 99 bytes of JSON')
  const json = Buffer.from(JSON.stringify(items))
  const ndjson = Buffer.from(items.map(item => JSON.stringify(item)).join('\n'))
  const engines = {
    'scanner, walking': (onItems: (items: unknown[]) => void) => new JsonArrayScanner({ batchSize: 1000, batchBytes: 250, maxParseBytes: 16 }, onItems),
    'scanner, guessing': (onItems: (items: unknown[]) => void) => new JsonArrayScanner({ batchSize: 1000, batchBytes: 250 }, onItems),
    filter: (onItems: (items: unknown[]) => void) => new FilterEngine({ batchSize: 1000, batchBytes: 250, filter: /^\d+$/ }, onItems),
    splitter: (onItems: (items: unknown[]) => void) => new NdjsonSplitter({ batchSize: 1000, batchBytes: 250 }, onItems)
  }
  for (const [name, make] of Object.entries(engines)) {
    for (const step of [7, 64, 100_000]) {
      const batches: unknown[][] = []
      const engine = make(batch => { batches.push(batch) })
      const body = name === 'splitter' ? ndjson : json
      for (let at = 0; at < body.length; at += step) engine.write(body.subarray(at, at + step))
      engine.end()
      t.same(batches.map(batch => batch.length), [3, 3, 3, 1], `${name}, chunks of ${step}`)
      t.same(batches.flat(), items, `${name}, chunks of ${step}: the items, in order`)
    }
  }
  const sizes: number[] = []
  const capped = new JsonArrayScanner({ batchSize: 2, batchBytes: 250 }, batch => { sizes.push(batch.length) })
  capped.write(json)
  capped.end()
  t.same(sizes, [2, 2, 2, 2, 2], 'batchSize still caps a batch under the byte bound')
  t.throws(() => new NdjsonSplitter({ batchBytes: 0 }, () => {}), { code: 'FST_NEXURE_INVALID_OPTION', message: /batchBytes/ })
})
