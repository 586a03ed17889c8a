// The one chunking helper every scanner/parser test runs its cases through: a streamed result
// must not depend on where the bytes were cut, so each input is fed whole, byte by byte, split in
// two at every position (small inputs), at seeded random positions, and inside every multi-byte
// UTF-8 sequence (a BOM included).

export interface Chunking {
  name: string
  chunks: Buffer[]
}

export interface ChunkingOptions {
  /** Seed of the random splits. @default 1 */
  seed?: number
  /** How many random chunkings. @default 8 */
  randomSplits?: number
  /** Byte-by-byte feeding for inputs up to this many bytes. @default 4096 */
  byteByByteUpTo?: number
  /** Every two-way split for inputs up to this many bytes. @default 64 */
  twoWaySplitsUpTo?: number
}

/** A small seeded PRNG (mulberry32): the same seed gives the same cuts on every run. */
export function prng (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Cuts `buf` at the given offsets (sorted, deduplicated, out-of-range ones ignored). */
export function splitAt (buf: Buffer, cuts: Iterable<number>): Buffer[] {
  const points = [...new Set(cuts)].filter(cut => cut > 0 && cut < buf.length).sort((a, b) => a - b)
  const chunks: Buffer[] = []
  let previous = 0
  for (const cut of points) {
    chunks.push(buf.subarray(previous, cut))
    previous = cut
  }
  chunks.push(buf.subarray(previous))
  return chunks
}

/** Offsets of every byte that continues a multi-byte UTF-8 sequence (a cut there splits a character). */
export function insideUtf8 (buf: Buffer): number[] {
  const offsets: number[] = []
  for (let i = 1; i < buf.length; i++) {
    if ((buf[i]! & 0xc0) === 0x80 && buf[i - 1]! >= 0x80) offsets.push(i)
  }
  return offsets
}

export function chunkings (buf: Buffer, options: ChunkingOptions = {}): Chunking[] {
  const { seed = 1, randomSplits = 8, byteByByteUpTo = 4096, twoWaySplitsUpTo = 64 } = options
  const result: Chunking[] = [{ name: 'whole', chunks: [buf] }]
  const n = buf.length
  if (n > 1 && n <= byteByByteUpTo) {
    result.push({ name: 'byte by byte', chunks: Array.from({ length: n }, (_, i) => buf.subarray(i, i + 1)) })
  }
  if (n <= twoWaySplitsUpTo) {
    for (let cut = 1; cut < n; cut++) result.push({ name: `split at ${cut}`, chunks: splitAt(buf, [cut]) })
  }
  const random = prng(seed)
  for (let k = 0; k < randomSplits && n > 1; k++) {
    const count = 1 + Math.floor(random() * Math.min(n - 1, 40))
    const cuts = Array.from({ length: count }, () => 1 + Math.floor(random() * (n - 1)))
    result.push({ name: `random #${k} (seed ${seed})`, chunks: splitAt(buf, cuts) })
  }
  const inside = insideUtf8(buf)
  if (inside.length > 0) {
    result.push({ name: 'inside every multi-byte character', chunks: splitAt(buf, inside) })
    const afterLead = inside.filter(i => (buf[i - 1]! & 0xc0) === 0xc0)
    result.push({ name: 'after every UTF-8 lead byte', chunks: splitAt(buf, afterLead) })
  }
  if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) {
    result.push({ name: 'inside the BOM at 1', chunks: splitAt(buf, [1]) })
    result.push({ name: 'inside the BOM at 2', chunks: splitAt(buf, [2]) })
    result.push({ name: 'BOM byte by byte', chunks: splitAt(buf, [1, 2, 3]) })
  }
  return result
}

/** What a scanner or splitter has: write chunks, then end. */
export interface ChunkConsumer {
  write (chunk: Uint8Array): void
  end (): void
}

export interface Collected {
  items: unknown[]
  /** Size of each onItems call, in order. */
  batches: number[]
  /** The coded error thrown, if any. */
  error?: Error & { code?: string, offset?: number, item?: number, line?: number }
  /** Index of the chunk whose write threw, or 'end' when end() threw. */
  thrownAt?: number | 'end'
}

/** Feeds `chunks` to a consumer made by `create` and collects its items, or what it threw. */
export function collect (
  create: (onItems: (items: unknown[]) => void) => ChunkConsumer,
  chunks: readonly Uint8Array[]
): Collected {
  const collected: Collected = { items: [], batches: [] }
  const consumer = create(items => {
    collected.batches.push(items.length)
    for (const item of items) collected.items.push(item)
  })
  let k = 0
  try {
    for (; k < chunks.length; k++) consumer.write(chunks[k]!)
    k = -1
    consumer.end()
  } catch (err) {
    collected.error = err as Collected['error']
    collected.thrownAt = k === -1 ? 'end' : k
  }
  return collected
}

/** A short, ASCII-only rendering of a body for assertion names (TAP lines must not break). */
export function show (body: Buffer | string | unknown, max = 120): string {
  const text = Buffer.isBuffer(body) ? body.toString('latin1') : typeof body === 'string' ? body : JSON.stringify(body) ?? String(body)
  const escaped = JSON.stringify(text).replace(/[^\x20-\x7e]/g, c => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
  return escaped.length > max ? escaped.slice(0, max) + '…"' : escaped
}
