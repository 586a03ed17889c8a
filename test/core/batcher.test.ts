import t from 'tap'
import { Batcher, DESTROYED } from '../../lib/core/batcher.js'
import { JsonArrayScanner } from '../../lib/core/array-scanner.js'
import { FilterEngine } from '../../lib/core/filter-engine.js'
import { NdjsonSplitter } from '../../lib/core/ndjson-splitter.js'

function batcher (size: number): { b: Batcher, out: unknown[][] } {
  const out: unknown[][] = []
  return { b: new Batcher(size, batch => { out.push(batch) }, () => false), out }
}

t.test('items go out in batches of size, in order; flush hands out a short one, and nothing when empty', async t => {
  const { b, out } = batcher(3)
  for (let i = 0; i < 7; i++) b.push(i)
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
  b.pushRun(whole)
  t.equal(out[0], whole, 'the same array, not a copy')
  b.pushRun([4])
  b.pushRun([5, 6])
  t.same(out, [[1, 2, 3], [4, 5, 6]])
  t.not(out[1], whole)
  b.pushRun([7, 8])
  b.pushRun([9, 10, 11].slice(0, b.room))
  t.same(out.at(-1), [7, 8, 9])
})

t.test('clear forgets the batch being filled; a throwing onBatch still counts its batch as out; one that destroyed the engine stops it', async t => {
  const { b, out } = batcher(2)
  b.push('a')
  b.clear()
  b.flush()
  t.same(out, [])
  const throwing = new Batcher(2, () => { throw new Error('stop') }, () => false)
  throwing.push(1)
  t.throws(() => throwing.push(2), /stop/)
  t.equal(throwing.emitted, 2)
  t.equal(throwing.pending, 0)
  let destroyed = false
  const stopping = new Batcher(1, () => { destroyed = true }, () => destroyed)
  let thrown: unknown = null
  try {
    stopping.push(1)
  } catch (err) {
    thrown = err
  }
  t.equal(thrown, DESTROYED, 'an onBatch that destroyed its engine stops it with DESTROYED')
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
