// Whole buffered bodies (the small-body path, and bodies checked before they are streamed):
// parsed at once, and on bad input scanned by the engines to locate the fault exactly as a
// streamed body would report it. Above the engines: it uses them, they never use it.

import { StringDecoder } from 'node:string_decoder'
import { JsonArrayScanner, type JsonScannerOptions } from './array-scanner.js'
import { depthFault, nestedDeeperThan, tooDeepDetail } from './depth.js'
import { ENGINE_DEFAULTS, poisoningPolicy, type SecureParseOptions } from './engine-options.js'
import { invalidJsonError } from './fault.js'
import { NdjsonSplitter, type NdjsonSplitterOptions } from './ndjson-splitter.js'
import { mayPoison, secureParse } from './secure-parse.js'
import { MIN_TRANSCODE, TRANSCODES, utf8Text } from './utf8.js'

/**
 * Parses a whole buffered JSON body (one secure parse call). On failure it throws the same coded,
 * located error a JsonArrayScanner would throw for the same bytes.
 */
export function parseJsonBody (body: Buffer, options: Partial<SecureParseOptions> & { maxDepth?: number } = {}): unknown {
  return parseJsonWhole([body], body.length, poisoningPolicy(options), options.maxDepth ?? ENGINE_DEFAULTS.maxDepth)
}

/**
 * The text of a body that came in `chunks` (`length` bytes in all), decoded chunk by chunk
 * without joining the bytes first where V8 decodes (a 1 MB body in 64 KiB chunks decodes, is
 * checked and parses in 4.8 ms against 5.2 ms joined and decoded at once; `node`
 * microbenchmark, median of 25; the same at 100 KB). Where ICU transcodes (core/utf8.ts), the
 * chunks are joined and decoded in one call: the join is a copy, cheaper than a decode.
 */
export function decodeChunks (chunks: readonly Buffer[], length: number): string {
  if (chunks.length === 1) return utf8Text(chunks[0]!, 0, length)
  if (TRANSCODES && length >= MIN_TRANSCODE) return utf8Text(Buffer.concat(chunks, length), 0, length)
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
    const text = decodeChunks(chunks, length)
    // JSON.parse itself when the text cannot hold a poisoned key (nor a BOM, which
    // secure-json-parse strips): one `mayPoison` look instead of secure-json-parse's two
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

/**
 * The items the array scanner streams out of a whole JSON body (the chunks it came in): what
 * `batches({ path, entries })` yields for a buffered body where the parsed value cannot say
 * (entries and `*` keep document order and refuse a key given twice), and the located error a
 * streamed body would get where it has a fault.
 */
export function scanJsonItems (chunks: readonly Buffer[], options: Omit<JsonScannerOptions, 'batchSize' | 'batchBytes'>): unknown[] {
  const items: unknown[] = []
  const scanner = new JsonArrayScanner({ ...options, batchSize: Number.MAX_SAFE_INTEGER, batchBytes: Infinity }, batch => {
    for (const item of batch) items.push(item)
  })
  for (const chunk of chunks) scanner.write(chunk)
  scanner.end()
  return items
}

/**
 * A whole NDJSON body read at once (the small-body path), with its options already checked and
 * no line longer than maxItemSize possible: its lines cut from the text decoded once, each one
 * `JSON.parse` (secure-json-parse's where the text may hold a poisoned key), with the line
 * rules of NdjsonSplitter (one '\r' before '\n' dropped; a line of spaces, tabs and '\r' is
 * blank). It builds no splitter: constructing one checks its options and costs a 10 KB body of
 * 50 lines ~6 us of its ~60 us (`node` microbenchmark, median of 9). On any fault the splitter
 * runs over the same bytes, and throws the located error a streamed body would get.
 */
export function parseNdjsonWhole (chunks: readonly Buffer[], byteLength: number, policy: SecureParseOptions, maxDepth: number): unknown[] {
  const text = decodeChunks(chunks, byteLength)
  const plain = !mayPoison(text, policy)
  const items: unknown[] = []
  const length = text.length
  try {
    for (let from = 0; from < length;) {
      let newline = text.indexOf('\n', from)
      if (newline === -1) newline = length
      let to = newline
      if (to > from && text.charCodeAt(to - 1) === RETURN) to--
      let first = from
      while (first < to) {
        const c = text.charCodeAt(first)
        if (c !== 0x20 && c !== 0x09 && c !== RETURN) break
        first++
      }
      if (first < to) {
        if (depthFault(text, first, to, maxDepth) !== -1) throw new RangeError(tooDeepDetail(maxDepth))
        // secure-json-parse also strips a line's leading BOM, which JSON.parse refuses.
        items.push(plain && text.charCodeAt(from) !== 0xfeff ? JSON.parse(text.slice(from, to)) : secureParse(text.slice(from, to), policy))
      }
      from = newline + 1
    }
  } catch (err) {
    parseNdjsonBody(chunks, { ...policy, maxDepth, maxItemSize: Infinity })
    throw invalidJsonError(err instanceof Error ? err.message : String(err), { offset: 0 })
  }
  return items
}

const RETURN = 0x0d

/** Parses a whole buffered NDJSON body (one buffer, or the chunks it came in): the values of all its non-blank lines; with `format: 'json-seq'`, of a JSON text sequence's records. */
export function parseNdjsonBody (body: Buffer | readonly Buffer[], options: Omit<NdjsonSplitterOptions, 'batchSize' | 'batchBytes' | 'pool'> = {}): unknown[] {
  const items: unknown[] = []
  const splitter = new NdjsonSplitter({ maxItemSize: Infinity, ...options, batchSize: Number.MAX_SAFE_INTEGER, batchBytes: Infinity }, batch => {
    for (const item of batch) items.push(item)
  })
  if (Buffer.isBuffer(body)) splitter.write(body)
  else for (const chunk of body) splitter.write(chunk)
  splitter.end()
  return items
}
