import t from 'tap'
import { MIN_TRANSCODE, TRANSCODES, utf8Text } from '../../lib/core/utf8.js'
import { decodeChunks } from '../../lib/core/whole-body.js'
import { splitAt } from '../helpers/chunking.js'

// utf8Text is a faster road to the very string `toString('utf8', start, end)` gives: the same
// characters for valid UTF-8 of every width, the same replacement characters for invalid bytes,
// on both sides of the size from which it transcodes, for whole buffers and for ranges.

t.equal(TRANSCODES, Number(process.versions.node.split('.')[0]) < 24, 'transcodes before Node 24 only (official builds have ICU)')

// Deterministic text: mostly ASCII, with 2-, 3- and 4-byte characters, as names and tags are.
function mixedText (length: number, seed: number): string {
  const pieces = ['user', '@example.com', '"id":', '12345', 'José', 'Müller', 'δέλτα', '東京', '😀', '\u2028', ' ', ',']
  let text = ''
  let state = seed
  while (text.length < length) {
    state = (state * 1103515245 + 12345) % 2147483648
    text += pieces[state % pieces.length]!
  }
  return text
}

const sizes = [0, 1, 100, MIN_TRANSCODE - 1, MIN_TRANSCODE, MIN_TRANSCODE + 3, 64 * 1024, 300 * 1024]

t.test('valid UTF-8: the same string as toString, whole and in ranges', async t => {
  for (const size of sizes) {
    const bytes = Buffer.from(mixedText(size, size + 1))
    t.equal(utf8Text(bytes, 0, bytes.length), bytes.toString('utf8'), `${bytes.length} bytes, whole`)
    // Ranges that start and end on character boundaries, as the engines cut them.
    const text = bytes.toString('utf8')
    const from = Buffer.byteLength(text.slice(0, Math.floor(text.length / 5)))
    const to = Buffer.byteLength(text.slice(0, Math.floor(text.length * 4 / 5)))
    t.equal(utf8Text(bytes, from, to), bytes.toString('utf8', from, to), `${bytes.length} bytes, [${from}, ${to})`)
  }
})

t.test('pure ASCII and a leading BOM are kept as toString keeps them', async t => {
  const ascii = Buffer.from('{"a":1}'.repeat(2000))
  t.equal(utf8Text(ascii, 0, ascii.length), ascii.toString('utf8'))
  const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(mixedText(2 * MIN_TRANSCODE, 7))])
  const text = utf8Text(bom, 0, bom.length)
  t.equal(text.charCodeAt(0), 0xfeff, 'the BOM is a character of the text')
  t.equal(text, bom.toString('utf8'))
})

t.test('invalid UTF-8 gets the replacement characters toString gives', async t => {
  const valid = Buffer.from(mixedText(2 * MIN_TRANSCODE, 3))
  const cases: Array<[string, Buffer]> = [
    ['a stray continuation byte', Buffer.from([0x80])],
    ['0xff', Buffer.from([0xff])],
    ['an overlong encoding', Buffer.from([0xc0, 0xaf])],
    ['a UTF-16 surrogate encoded', Buffer.from([0xed, 0xa0, 0x80])],
    ['a 4-byte character cut short', Buffer.from([0xf0, 0x9f, 0x98])]
  ]
  for (const [name, bad] of cases) {
    for (const bytes of [Buffer.concat([bad, valid]), Buffer.concat([valid, bad, valid]), Buffer.concat([valid, bad])]) {
      const text = utf8Text(bytes, 0, bytes.length)
      t.equal(text, bytes.toString('utf8'), `${name}, ${bytes.length} bytes`)
      t.ok(text.includes('\ufffd'), 'holds a replacement character')
    }
  }
})

t.test('decodeChunks: chunks cut anywhere, even inside a character, give the text of the whole', async t => {
  const bytes = Buffer.from(mixedText(3 * MIN_TRANSCODE, 11))
  for (const cuts of [[1], [2, 3], [MIN_TRANSCODE - 1], [100, MIN_TRANSCODE + 1, 2 * MIN_TRANSCODE + 2]]) {
    t.equal(decodeChunks(splitAt(bytes, cuts), bytes.length), bytes.toString('utf8'), `cut at ${cuts.join(', ')}`)
    // A small body in pieces takes the StringDecoder road; the same text.
    const small = bytes.subarray(0, 200)
    t.equal(decodeChunks([small.subarray(0, 7), small.subarray(7)], small.length), small.toString('utf8'))
  }
})
