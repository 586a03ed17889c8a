// Whole buffered bodies: where `batches({ path })` may walk the value parsed whole, and where it
// must ask the bytes (scanJsonItems), which answer as a streamed body would.

import t from 'tap'
import { mayGiveKeyTwice, scanJsonItems } from '../../lib/core/whole-body.js'
import { parsePath } from '../../lib/core/path.js'

const body = (text: string, cut?: number): Buffer[] => {
  const bytes = Buffer.from(text)
  return cut === undefined ? [bytes] : [bytes.subarray(0, cut), bytes.subarray(cut)]
}

t.test('a key of the path can be given twice only where its text repeats, or may be escaped', async t => {
  t.equal(mayGiveKeyTwice(body('{"items":[1,2]}'), parsePath('items')), false)
  t.equal(mayGiveKeyTwice(body('{"data":{"rows":[{"a":"x"}]}}'), parsePath('data.rows')), false)
  t.equal(mayGiveKeyTwice(body('{"items":[1],"items":[2]}'), parsePath('items')), true)
  t.equal(mayGiveKeyTwice(body('{"items":[1],"items":[2]}', 16), parsePath('items')), true, 'across chunks')
  t.equal(mayGiveKeyTwice(body('{"items":[1],"it\\u0065ms":[2]}'), parsePath('items')), true, 'another spelling needs \\u')
  t.equal(mayGiveKeyTwice(body('{"items":[{"items":1}]}'), parsePath('items')), true, 'the text repeats: the bytes decide')
  t.equal(mayGiveKeyTwice(body('{"a/b":[1]}'), parsePath('a/b')), true, 'a key with a character that may be escaped (\\/)')
  t.equal(mayGiveKeyTwice(body('[[1],[2]]'), parsePath('1')), false, 'indexes cannot repeat')
})

t.test('scanJsonItems gives what the scanner streams, and throws its located errors', async t => {
  t.same(scanJsonItems(body('{"items":[{"items":1},2]}', 5), { path: 'items' }), [{ items: 1 }, 2])
  t.same(scanJsonItems(body('{"b":1,"2":2}'), { entries: true }), [['b', 1], ['2', 2]])
  t.throws(() => scanJsonItems(body('{"items":[1],"items":[2]}'), { path: 'items' }), { code: 'FST_NEXURE_INVALID_JSON', offset: 13, message: /path given twice/ })
})
