import t from 'tap'
import { sanitizeFilename } from '../../lib/upload/filename.js'
import { hostileNames } from '../helpers/hostile-names.js'

t.test('sanitizeFilename reduces hostile names to harmless base names', async t => {
  for (const [input, expected] of hostileNames) t.equal(sanitizeFilename(input), expected, JSON.stringify(input))
  t.equal(sanitizeFilename('ok\r\nname.txt'), 'okname.txt')
  t.equal(sanitizeFilename(undefined), '')
  t.equal(sanitizeFilename('report 2024.final.pdf'), 'report 2024.final.pdf', 'an ordinary name is kept as is')
  t.ok(Buffer.byteLength(sanitizeFilename('x'.repeat(1000))) <= 255)
})
