// Assertions for JsonArrayScanner cases, run through every chunking of the shared helper: a body
// yields exactly these items, or is refused with this coded, located error, however it is cut,
// and no pooled buffer is left behind.

import type { Test } from 'tap'
import { isDeepStrictEqual } from 'node:util'
import { JsonArrayScanner } from '../../lib/core/array-scanner.js'
import type { JsonScannerOptions } from '../../lib/core/array-scanner.js'
import { BufferPool } from '../../lib/core/buffer-pool.js'
import { chunkings, collect, show } from './chunking.js'
import type { Collected } from './chunking.js'

export interface Expected {
  code: string
  offset?: number
  item?: number
  message?: RegExp
}

export function scan (chunks: readonly Uint8Array[], options: JsonScannerOptions = {}): Collected {
  return collect(onItems => new JsonArrayScanner(options, onItems), chunks)
}

const asBuffer = (body: string | Buffer): Buffer => typeof body === 'string' ? Buffer.from(body) : body

/** Every chunking of `body` yields `items`, and leaves no pooled buffer behind. */
export function yields (t: Test, body: string | Buffer, items: unknown[], options: JsonScannerOptions = {}): void {
  const buf = asBuffer(body)
  const pool = new BufferPool({ slabSize: 16 })
  const wrong: string[] = []
  for (const { name, chunks } of chunkings(buf)) {
    const result = scan(chunks, { pool, ...options })
    if (result.error !== undefined) wrong.push(`${name}: threw ${result.error.message}`)
    else if (!isDeepStrictEqual(result.items, items)) wrong.push(`${name}: ${JSON.stringify(result.items)}`)
  }
  t.same(wrong, [], `${show(buf, 80)} yields ${show(items, 60)}`)
  t.equal(pool.stats.inUse, 0, 'every pooled buffer released')
}

/** Every chunking of `body` is rejected with the same coded, located error. */
export function rejects (t: Test, body: string | Buffer, expected: Expected, options: JsonScannerOptions = {}): void {
  const buf = asBuffer(body)
  const pool = new BufferPool({ slabSize: 16 })
  const wrong: string[] = []
  for (const { name, chunks } of chunkings(buf)) {
    const { error, items } = scan(chunks, { pool, ...options })
    if (error === undefined) {
      wrong.push(`${name}: accepted ${JSON.stringify(items)}`)
      continue
    }
    if (error.code !== expected.code) wrong.push(`${name}: ${error.code} ${error.message}`)
    if (expected.offset !== undefined && error.offset !== expected.offset) wrong.push(`${name}: offset ${error.offset} (${error.message})`)
    if (expected.item !== undefined && error.item !== expected.item) wrong.push(`${name}: item ${error.item} (${error.message})`)
    if (expected.message !== undefined && !expected.message.test(error.message)) wrong.push(`${name}: message ${error.message}`)
  }
  t.same(wrong, [], `${show(buf, 80)} -> ${expected.code}`)
  t.equal(pool.stats.inUse, 0, 'every pooled buffer released')
}
