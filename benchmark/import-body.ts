import { Readable } from 'node:stream'

// The import benchmark's body: a JSON array of rows shaped like the bulk-import examples' own
// (`{"id","name","amount","level"}`, what examples/large-body-client.ts sends), of at most `size`
// bytes, generated while it is sent. Rows differ in length, so the count is known once the body
// has been produced: `rows()`.

const CHUNK_BYTES = 64 * 1024
const LEVELS = ['debug', 'info', 'info', 'info', 'info', 'warn', 'warn', 'error'] as const

/** The JSON text of row `index`; a multiplicative hash of the index spreads the values. */
export function importRowText (index: number): string {
  const hash = Math.imul(index + 1, 2654435761) >>> 0
  return `{"id":${index},"name":"row ${index}","amount":${(hash % 1_000_000) / 100},"level":"${LEVELS[hash % LEVELS.length]!}"}`
}

/** A Readable of a JSON array of at most `size` bytes (ASCII: bytes = characters). */
export function importBody (size: number): Readable & { rows: () => number } {
  let index = 0
  let bytes = 2 // `[` and `]`
  let done = false
  const stream = new Readable({
    highWaterMark: CHUNK_BYTES,
    read () {
      if (done) return
      let text = index === 0 ? '[' : ''
      while (text.length < CHUNK_BYTES) {
        const row = (index === 0 ? '' : ',') + importRowText(index)
        if (bytes + row.length > size) {
          done = true
          break
        }
        text += row
        bytes += row.length
        index++
      }
      if (done) text += ']'
      this.push(text)
      if (done) this.push(null)
    }
  })
  return Object.assign(stream, { rows: () => index })
}
