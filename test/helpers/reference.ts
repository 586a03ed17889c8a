// The reference every differential and property test compares the engines with: what Fastify's
// own parser (secure-json-parse on the whole text) makes of a body, as items or an error code.

import sjson from 'secure-json-parse'
import type { PoisoningAction } from '../../lib/core/engine-options.js'
import { parsePath } from '../../lib/core/path.js'

export interface Policy { protoAction?: PoisoningAction, constructorAction?: PoisoningAction }
export type Outcome = { items: unknown[], code?: undefined, line?: undefined } | { code: string, items?: undefined, line?: number }

const WHITESPACE_ONLY = /^\ufeff?[ \t\n\r]*$/
const FORBIDDEN = 'Object contains forbidden prototype property'

function failureCode (err: unknown): string {
  return (err as Error).message === FORBIDDEN ? 'FST_NEXURE_FORBIDDEN_PROPERTY' : 'FST_NEXURE_INVALID_JSON'
}

/**
 * A JSON body: the elements of the array at `path` (the top-level value without one), of every
 * array a `*` path matches, or with `entries` the `[key, value]` pairs of the object there. The
 * objects a `*` or entries walks must not have keys like "2" (a parsed object puts those first,
 * the streamed order is the document's) nor a key given twice (nexure refuses it).
 */
export function referenceJson (body: Buffer, path?: string, policy: Policy = {}, entries = false): Outcome {
  const text = body.toString('utf8')
  if (WHITESPACE_ONLY.test(text)) return { code: 'FST_NEXURE_EMPTY_BODY' }
  let value: unknown
  try {
    value = sjson.parse(text, null, policy)
  } catch (err) {
    return { code: failureCode(err) }
  }
  const segments = parsePath(path)
  if (segments.length === 0 && !entries) return { items: Array.isArray(value) ? value : [value] }
  const items: unknown[] = []
  return select(value, segments, entries, items) ? { items } : { code: entries ? 'FST_NEXURE_PATH_NOT_OBJECT' : 'FST_NEXURE_PATH_NOT_ARRAY' }
}

const isObject = (node: unknown): node is Record<string, unknown> => node !== null && typeof node === 'object' && !Array.isArray(node)

/** Appends what `segments` select in `node` to `items`; false when the path does not lead to it. */
function select (node: unknown, segments: readonly (string | number)[], entries: boolean, items: unknown[]): boolean {
  if (segments.length === 0) {
    if (entries ? !isObject(node) : !Array.isArray(node)) return false
    items.push(...(entries ? Object.entries(node as object) : node as unknown[]))
    return true
  }
  const [segment, ...rest] = segments
  if (segment === '*') {
    if (!Array.isArray(node) && !isObject(node)) return false
    return Object.values(node).every(child => select(child, rest, entries, items))
  }
  if (Array.isArray(node) && typeof segment === 'number' && segment < node.length) return select(node[segment], rest, entries, items)
  if (isObject(node) && typeof segment === 'string' && Object.hasOwn(node, segment)) return select(node[segment], rest, entries, items)
  return false
}

/** An NDJSON body: the value of every non-blank line, or the first failing line (1-based). */
export function referenceNdjson (body: Buffer, policy: Policy = {}): Outcome {
  const lines = body.toString('utf8').split('\n')
  const items: unknown[] = []
  for (let k = 0; k < lines.length; k++) {
    let line = lines[k]!
    if (line.endsWith('\r')) line = line.slice(0, -1)
    if (/^[ \t\r]*$/.test(line)) continue
    try {
      items.push(sjson.parse(line, null, policy))
    } catch (err) {
      return { code: failureCode(err), line: k + 1 }
    }
  }
  return { items }
}

/**
 * A JSON text sequence (RFC 7464): the value of every non-blank record (the text after each RS),
 * or the first failing record (1-based; 0 for text before the first RS that is not whitespace).
 */
export function referenceJsonSeq (body: Buffer, policy: Policy = {}): Outcome {
  const records = body.toString('utf8').split('\x1e')
  const items: unknown[] = []
  for (let k = 0; k < records.length; k++) {
    const record = records[k]!
    if (/^[ \t\n\r]*$/.test(record)) continue
    if (k === 0) return { code: 'FST_NEXURE_INVALID_JSON', line: 0 }
    try {
      items.push(sjson.parse(record, null, policy))
    } catch (err) {
      return { code: failureCode(err), line: k }
    }
  }
  return { items }
}

/**
 * An NDJSON body under onInvalidItem 'skip': the values of the lines that parse, and the 1-based
 * numbers of those that do not; a forbidden property still refuses the body.
 */
export function referenceNdjsonSkipping (body: Buffer, policy: Policy = {}): { items: unknown[], skipped: number[] } | { code: string, line: number } {
  const lines = body.toString('utf8').split('\n')
  const items: unknown[] = []
  const skipped: number[] = []
  for (let k = 0; k < lines.length; k++) {
    let line = lines[k]!
    if (line.endsWith('\r')) line = line.slice(0, -1)
    if (/^[ \t\r]*$/.test(line)) continue
    try {
      items.push(sjson.parse(line, null, policy))
    } catch (err) {
      if (failureCode(err) === 'FST_NEXURE_FORBIDDEN_PROPERTY') return { code: 'FST_NEXURE_FORBIDDEN_PROPERTY', line: k + 1 }
      skipped.push(k + 1)
    }
  }
  return { items, skipped }
}
