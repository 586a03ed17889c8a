import { Readable } from 'node:stream'

// A JSON array of exactly `size` bytes, generated while it is sent: the client never holds
// more than one chunk. Every element is padded to the same byte length, so the item count and
// the Content-Length are known before the first byte goes out; the few bytes left over are
// whitespace before the closing `]`. Rows look like a typical export: ids, names (some with
// multi-byte UTF-8), an email, a flag, a number, tags, a timestamp.

export const ITEM_BYTES = 200
const CHUNK_BYTES = 64 * 1024

const NAMES = ['Ada Lovelace', 'Alan Turing', 'Grace Hopper', 'José Martí', 'Zoë Kravitz', 'Søren Kierkegaard',
  'Edsger Dijkstra', 'Barbara Liskov', 'Donald Knuth', 'Hedy Lamarr', 'Ken Thompson', 'Margaret Hamilton']
const TAGS = ['"admin"', '"beta"', '"trial"', '"eu"', '"us"', '"vip"', '"legacy"']
const EPOCH = Date.UTC(2026, 0, 1)

// Building every row from scratch runs at ~100 MB/s, about as fast as nexure takes them, so the
// client would set the pace. Only the id (and the email made from it) changes per row; the rest
// of the row cycles through VARIANTS precomputed tails, one per id width, padded so that the
// whole row has ITEM_BYTES bytes.
const VARIANTS = 1024
const tails = new Map<number, string[]>()

function tailsFor (idDigits: number): string[] {
  let list = tails.get(idDigits)
  if (list !== undefined) return list
  // `{"id":` + id + `,"email":"user` + id + `@example.com",` is 34 bytes plus the id twice.
  const room = ITEM_BYTES - 34 - 2 * idDigits
  list = []
  for (let variant = 0; variant < VARIANTS; variant++) {
    const name = NAMES[variant % NAMES.length] as string
    const tags = `${TAGS[variant % TAGS.length] as string},${TAGS[(variant * 3 + 1) % TAGS.length] as string}`
    const createdAt = new Date(EPOCH + variant * 86_400_017).toISOString()
    const head = `"name":"${name}","active":${variant % 3 !== 0},"score":${(variant * 37) % 10000 / 100},` +
      `"tags":[${tags}],"createdAt":"${createdAt}","note":"`
    const pad = room - Buffer.byteLength(head) - 2
    if (pad < 0) throw new Error(`a row with a ${idDigits}-digit id does not fit in ${ITEM_BYTES} bytes`)
    list.push(head + 'x'.repeat(pad) + '"}')
  }
  tails.set(idDigits, list)
  return list
}

/** The JSON text of item `index`, exactly ITEM_BYTES bytes long. */
export function itemText (index: number): string {
  const id = String(index)
  return `{"id":${id},"email":"user${id}@example.com",${tailsFor(id.length)[index % VARIANTS] as string}`
}

/** How many items a body of `size` bytes holds: `[` + n items + (n - 1) commas + `]` ≤ size. */
export function itemCount (size: number): number {
  return Math.max(0, Math.floor((size - 1) / (ITEM_BYTES + 1)))
}

/** A Readable of a JSON array of exactly `size` bytes holding `itemCount(size)` items. */
export function jsonArrayBody (size: number): Readable {
  const total = itemCount(size)
  const filler = total === 0 ? size - 2 : size - (total * (ITEM_BYTES + 1) + 1)
  let next = 0
  let opened = false
  let closed = false
  return new Readable({
    highWaterMark: CHUNK_BYTES,
    read () {
      if (closed) return
      let text = opened ? '' : '['
      opened = true
      while (next < total && text.length < CHUNK_BYTES) {
        text += (next === 0 ? '' : ',') + itemText(next)
        next++
      }
      if (next === total) {
        text += ' '.repeat(filler) + ']'
        closed = true
      }
      this.push(Buffer.from(text))
      if (closed) this.push(null)
    }
  })
}
