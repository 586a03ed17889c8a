// Whole buffered bodies (the small-body path, and bodies checked before they are streamed):
// parsed at once, and on bad input scanned by the engines to locate the fault exactly as a
// streamed body would report it. Above the engines: it uses them, they never use it.

import { StringDecoder } from 'node:string_decoder'
import { JsonArrayScanner } from './array-scanner.js'
import { depthFault, nestedDeeperThan, tooDeepDetail } from './depth.js'
import { ENGINE_DEFAULTS, poisoningPolicy, type SecureParseOptions } from './engine-options.js'
import { invalidJsonError } from './fault.js'
import { NdjsonSplitter, type NdjsonSplitterOptions } from './ndjson-splitter.js'
import { mayPoison, secureParse } from './secure-parse.js'

/**
 * Parses a whole buffered JSON body (one secure parse call). On failure it throws the same coded,
 * located error a JsonArrayScanner would throw for the same bytes.
 */
export function parseJsonBody (body: Buffer, options: Partial<SecureParseOptions> & { maxDepth?: number } = {}): unknown {
  return parseJsonWhole([body], body.length, poisoningPolicy(options), options.maxDepth ?? ENGINE_DEFAULTS.maxDepth)
}

/**
 * The text of a body that came in `chunks`, decoded chunk by chunk as Fastify's own parser
 * decodes it, without joining the bytes first: a 1 MB body in 64 KiB chunks decodes and parses
 * 15-25% faster than joined and decoded at once (`node` microbenchmark, median of 7): joining
 * writes a fresh megabyte, and one pass over it costs more than sixteen that stay in the cache.
 */
export function decodeChunks (chunks: readonly Buffer[]): string {
  if (chunks.length === 1) return chunks[0]!.toString('utf8')
  const decoder = new StringDecoder('utf8')
  let text = ''
  for (const chunk of chunks) text += decoder.write(chunk)
  return text + decoder.end()
}

/**
 * `parseJsonBody` with its options already checked, on the chunks the body came in (`length`
 * bytes in all): the per-request call of the small-body path, which builds no options object
 * (a 1 KB body's request spent ~1.5 us in two of them) and does not join the chunks.
 */
export function parseJsonWhole (chunks: readonly Buffer[], length: number, policy: SecureParseOptions, maxDepth: number): unknown {
  // A value nested more than maxDepth levels needs two brackets a level: a shorter body cannot
  // be too deep. A longer one is checked on its parsed value, which visits containers, not
  // bytes (a 1 MB array of rows: 0.3 ms to walk, 1.6 ms to check byte by byte, 3.3 ms to parse).
  // Checking the bytes first would not spare V8 its slow nested input either: 1 MB of arrays
  // ten levels deep, well within any maxDepth, takes 138 ms to parse, and 1 MB nested 500,000
  // levels deep 173 ms (`node` microbenchmark, median of 5): that slowness is the parse's at
  // any depth, which bodyLimit and streamThreshold bound, not maxDepth. Only when a poisoned
  // key is to be removed is the text checked first: the removed value could hide a deep one.
  const mayBeDeep = length >= 2 * (maxDepth + 1)
  try {
    const text = decodeChunks(chunks)
    // JSON.parse itself when the text cannot hold a poisoned key (nor a BOM, which
    // secure-json-parse strips): one pass of MAY_POISON instead of secure-json-parse's two
    // regular expressions (a 1 KB body: 0.4 us instead of 1.7 us; 1 MB: 0.5 ms instead of 0.7 ms).
    const plain = !mayPoison(text, policy) && text.charCodeAt(0) !== 0xfeff
    const removes = !plain && (policy.protoAction === 'remove' || policy.constructorAction === 'remove')
    if (mayBeDeep && removes && depthFault(text, 0, text.length, maxDepth) !== -1) throw new RangeError(tooDeepDetail(maxDepth))
    const value = plain ? JSON.parse(text) as unknown : secureParse(text, policy)
    if (mayBeDeep && !removes && nestedDeeperThan(value, maxDepth)) throw new RangeError(tooDeepDetail(maxDepth))
    return value
  } catch (err) {
    // The slow path runs only on bad input: scan it to find where the fault is.
    const scanner = new JsonArrayScanner({ ...policy, maxDepth, maxItemSize: Infinity }, () => {})
    for (const chunk of chunks) scanner.write(chunk)
    scanner.end()
    throw invalidJsonError(err instanceof Error ? err.message : String(err), { offset: 0 })
  }
}

/** Parses a whole buffered NDJSON body (one buffer, or the chunks it came in): the values of all its non-blank lines; with `format: 'json-seq'`, of a JSON text sequence's records. */
export function parseNdjsonBody (body: Buffer | readonly Buffer[], options: Omit<NdjsonSplitterOptions, 'batchSize' | 'pool'> = {}): unknown[] {
  const items: unknown[] = []
  const splitter = new NdjsonSplitter({ maxItemSize: Infinity, ...options, batchSize: Number.MAX_SAFE_INTEGER }, batch => {
    for (const item of batch) items.push(item)
  })
  if (Buffer.isBuffer(body)) splitter.write(body)
  else for (const chunk of body) splitter.write(chunk)
  splitter.end()
  return items
}
