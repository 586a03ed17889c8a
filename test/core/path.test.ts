import t from 'tap'
import { acceptsContainer, formatPath, hasWildcard, matches, parsePath, valueAt, WILDCARD } from '../../lib/core/path.js'

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
  t.same(parsePath('data.*.rows'), ['data', '*', 'rows'], 'a * segment is kept as it is: path.ts matches it as a wildcard')
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

t.test('what a segment matches: its key or index, or every one for *', async t => {
  t.ok(matches('a', 'a'))
  t.notOk(matches('a', 'b'))
  t.ok(matches(2, 2))
  t.notOk(matches(2, 3))
  t.ok(matches(WILDCARD, 'anything') && matches(WILDCARD, 7))
  t.ok(acceptsContainer('a', false) && !acceptsContainer('a', true))
  t.ok(acceptsContainer(0, true) && !acceptsContainer(0, false))
  t.ok(acceptsContainer(WILDCARD, true) && acceptsContainer(WILDCARD, false))
  t.ok(hasWildcard(parsePath('a.*.b')))
  t.notOk(hasWildcard(parsePath('a.b')))
})

t.test('valueAt walks a parsed value by the same rules, and leaves * to the bytes', async t => {
  const body = { a: [{ b: [1] }], '0': [2] }
  t.same(valueAt(body, parsePath('a.0.b')), [1])
  t.equal(valueAt(body, parsePath('0')), undefined, 'an index does not step into an object')
  t.equal(valueAt(body, parsePath('a.b')), undefined, 'a key does not step into an array')
  t.equal(valueAt(body, parsePath('a.1.b')), undefined)
  t.equal(valueAt(body, parsePath('a.*')), undefined)
  t.equal(valueAt({ a: null }, parsePath('a.b')), undefined)
  t.equal(valueAt(Object.create({ inherited: [1] }), parsePath('inherited')), undefined, 'own keys only')
})
