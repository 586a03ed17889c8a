// Whole buffered bodies: what `batches({ path, entries })` yields where the value parsed whole
// cannot say, found by the scanner over the bytes, as a streamed body would get it.

import t from 'tap'
import { scanJsonItems } from '../../lib/core/whole-body.js'

const body = (text: string, cut?: number): Buffer[] => {
  const bytes = Buffer.from(text)
  return cut === undefined ? [bytes] : [bytes.subarray(0, cut), bytes.subarray(cut)]
}

t.test('scanJsonItems gives what the scanner streams, and throws its located errors', async t => {
  t.same(scanJsonItems(body('{"items":[{"items":1},2]}', 5), { path: 'items' }), [{ items: 1 }, 2])
  t.same(scanJsonItems(body('{"b":1,"2":2}', 3), { entries: true }), [['b', 1], ['2', 2]])
  t.same(scanJsonItems(body('{"g":{"x":[1],"y":[2]}}'), { path: 'g.*' }), [1, 2])
  t.throws(() => scanJsonItems(body('{"items":[1],"items":[2]}'), { path: 'items' }), { code: 'FST_NEXURE_INVALID_JSON', offset: 13, message: /path given twice/ })
  t.throws(() => scanJsonItems(body('{"a":1,"a":2}'), { entries: true }), { code: 'FST_NEXURE_INVALID_JSON', offset: 7, message: /path given twice/ })
})
