import t from 'tap'
import { formatPath, parsePath } from '../../lib/core/path.js'

t.test('no path is the top level', async t => {
  t.same(parsePath(undefined), [])
  t.same(parsePath(''), [])
})

t.test('dot paths split into keys and array indexes', async t => {
  t.same(parsePath('items'), ['items'])
  t.same(parsePath('data.rows'), ['data', 'rows'])
  t.same(parsePath('a.0.b'), ['a', 0, 'b'])
  t.same(parsePath('0'), [0])
  t.same(parsePath('a.17'), ['a', 17])
})

t.test('only canonical non-negative integers are indexes', async t => {
  t.same(parsePath('a.01'), ['a', '01'])
  t.same(parsePath('a.-1'), ['a', '-1'])
  t.same(parsePath('a.1e3'), ['a', '1e3'])
  t.same(parsePath('a. 1'), ['a', ' 1'])
  t.same(parsePath('a.99999999999999999999'), ['a', '99999999999999999999'], 'too large to be an index: a key')
  t.same(parsePath('__proto__.x'), ['__proto__', 'x'])
})

t.test('empty segments are refused', async t => {
  for (const path of ['a..b', '.a', 'a.', '.', '..']) {
    t.throws(() => parsePath(path), TypeError, JSON.stringify(path))
  }
  t.throws(() => parsePath(5 as unknown as string), TypeError)
})

t.test('formatPath names a prefix of the path for messages', async t => {
  const segments = parsePath('a.0.b')
  t.equal(formatPath(segments), 'a.0.b')
  t.equal(formatPath(segments, 2), 'a.0')
  t.equal(formatPath(segments, 0), '')
})
