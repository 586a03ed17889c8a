// Turning a fault into a coded error that says where it is, in bytes of the body: each error
// is built once, from a location (byte offset, item index, line).
//
// Positions in V8's JSON.parse messages count UTF-16 code units of the parsed string; clients
// need byte offsets into what they sent, so positions are converted by walking the UTF-8 bytes
// the way Buffer#toString decodes them (an invalid sequence is one U+FFFD).

import {
  FST_NEXURE_EMPTY_BODY,
  FST_NEXURE_FORBIDDEN_PROPERTY,
  FST_NEXURE_INVALID_JSON,
  FST_NEXURE_ITEM_TOO_LARGE,
  FST_NEXURE_PATH_NOT_ARRAY,
  FST_NEXURE_PATH_NOT_OBJECT
} from '../errors.js'
import { COMMA, elementEnd, isWhitespace } from './json-bytes.js'
import { isForbiddenPropertyError, secureParse } from './secure-parse.js'
import type { SecureParseOptions } from './engine-options.js'

/**
 * Where a fault is: the byte offset in the body, and the item index, 1-based line (NDJSON) or
 * 1-based record (JSON text sequence) when known.
 */
export interface FaultLocation {
  offset: number
  item?: number | undefined
  line?: number | undefined
  record?: number | undefined
}

/** A nexure error with its location as numbers, for programs. */
export type LocatedError = Error & { code: string, statusCode: number, offset: number, item?: number, line?: number, record?: number }

const POSITION = / (?:in JSON )?at position (\d+)(?: \(line \d+ column \d+\))?$/
const SNIPPET = /, (?:\.\.\.)?".*"(?:\.\.\.)? is not valid JSON$/s

function where (location: FaultLocation): string {
  let text = `at byte offset ${location.offset}`
  if (location.line !== undefined) text += ` (line ${location.line})`
  else if (location.record !== undefined) text += ` (record ${location.record})`
  else if (location.item !== undefined) text += ` (item ${location.item})`
  return text
}

function locate<E extends Error> (err: E, location: FaultLocation): E & LocatedError {
  const located = err as E & LocatedError
  located.offset = location.offset
  if (location.item !== undefined) located.item = location.item
  if (location.line !== undefined) located.line = location.line
  if (location.record !== undefined) located.record = location.record
  return located
}

export function invalidJsonError (detail: string, location: FaultLocation): LocatedError {
  return locate(new FST_NEXURE_INVALID_JSON(`${detail} ${where(location)}`), location)
}

export function forbiddenPropertyError (location: FaultLocation, what = ''): LocatedError {
  return locate(new FST_NEXURE_FORBIDDEN_PROPERTY(`${what}${what === '' ? '' : ' '}${where(location)}`), location)
}

export function itemTooLargeError (what: string, limit: number, location: FaultLocation): LocatedError {
  return locate(new FST_NEXURE_ITEM_TOO_LARGE(`${what} ${where(location)}`, limit), location)
}

export function emptyBodyError (): LocatedError {
  return locate(new FST_NEXURE_EMPTY_BODY(), { offset: 0 })
}

export function pathNotArrayError (path: string, detail: string, location: FaultLocation): LocatedError {
  return locate(new FST_NEXURE_PATH_NOT_ARRAY(path, `${detail} (${where(location)})`), location)
}

/** `label` is `path "x"` or `the top level` (path.ts `pathLabel`). */
export function pathNotObjectError (label: string, detail: string, location: FaultLocation): LocatedError {
  return locate(new FST_NEXURE_PATH_NOT_OBJECT(label, `${detail} (${where(location)})`), location)
}

/**
 * The byte index (from `start`) of UTF-16 code unit `charIndex` of `bytes[start, end)` decoded
 * as UTF-8, decoding invalid sequences as Buffer#toString does (maximal subpart -> one U+FFFD).
 */
export function byteOffsetOfChar (bytes: Uint8Array, start: number, end: number, charIndex: number): number {
  let units = 0
  let i = start
  while (i < end && units < charIndex) {
    const lead = bytes[i]!
    if (lead < 0x80) {
      i++
      units++
      continue
    }
    let need = 0
    let lo = 0x80
    let hi = 0xbf
    if (lead >= 0xc2 && lead <= 0xdf) {
      need = 1
    } else if (lead >= 0xe0 && lead <= 0xef) {
      need = 2
      if (lead === 0xe0) lo = 0xa0
      else if (lead === 0xed) hi = 0x9f
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      need = 3
      if (lead === 0xf0) lo = 0x90
      else if (lead === 0xf4) hi = 0x8f
    }
    let j = i + 1
    let got = 0
    while (got < need && j < end) {
      const next = bytes[j]!
      if (next < lo || next > hi) break
      lo = 0x80
      hi = 0xbf
      j++
      got++
    }
    units += need === 3 && got === 3 ? 2 : 1
    i = j
  }
  return i - start
}

// V8 gives no position for "Unexpected token": the fault is the character just after the
// longest prefix that JSON.parse does not fault before its end (found by bisection; error path only).
function faultIndex (text: string, skipsBom: boolean): number {
  const body = skipsBom && text.charCodeAt(0) === 0xfeff ? 1 : 0
  const viable = (length: number): boolean => {
    try {
      JSON.parse(text.slice(body, length))
      return true
    } catch (err) {
      const message = (err as Error).message
      const position = POSITION.exec(message)
      return position === null ? message.startsWith('Unexpected end of JSON input') : Number(position[1]) >= length - body
    }
  }
  let low = body
  let high = text.length
  while (low < high) {
    const middle = (low + high + 1) >>> 1
    if (viable(middle)) low = middle
    else high = middle - 1
  }
  return low
}

/**
 * Turns a failed parse of `bytes[start, end)` into a located INVALID_JSON or FORBIDDEN_PROPERTY
 * error. `prefixChars` is how many code units the parsed string had before those bytes (1 when
 * the text was wrapped in '[' ']').
 */
export function parseFailure (
  err: unknown, bytes: Buffer, start: number, end: number, bodyOffset: number,
  prefixChars: number, location: Omit<FaultLocation, 'offset'>
): LocatedError {
  if (isForbiddenPropertyError(err)) {
    return forbiddenPropertyError({ ...location, offset: bodyOffset })
  }
  const message = err instanceof Error ? err.message : String(err)
  const position = POSITION.exec(message)
  let offset = bodyOffset
  let detail = message.replace(SNIPPET, '')
  if (position !== null) {
    detail = message.slice(0, position.index)
    const charIndex = Number(position[1]) - prefixChars
    if (charIndex > 0) offset = bodyOffset + byteOffsetOfChar(bytes, start, end, charIndex)
  } else if (message.startsWith('Unexpected end of JSON input')) {
    offset = bodyOffset + (end - start)
  } else {
    offset = bodyOffset + byteOffsetOfChar(bytes, start, end, faultIndex(bytes.toString('utf8', start, end), prefixChars < 0))
  }
  if (err instanceof RangeError) detail = `Value nested too deeply (${message})`
  return invalidJsonError(detail, { ...location, offset })
}

/**
 * A parse call of a run of `count` array elements (`bytes`, starting at body offset `start`, the
 * first being item `first`) failed. With one element, the failure says where; with several, each
 * is parsed again alone, as a run of one is ('[' + element + ']'), and the first at fault is
 * reported with its own offset and index. The scanner checked the bytes between the elements
 * already, so finding where each one ends only needs strings and nesting (see elementEnd).
 */
export function runFault (err: unknown, bytes: Buffer, start: number, first: number, count: number, policy: SecureParseOptions): LocatedError {
  if (count === 1) return parseFailure(err, bytes, 0, bytes.length, start, 1, { item: first })
  let i = 0
  for (let k = 0; k < count; k++) {
    while (i < bytes.length && (isWhitespace(bytes[i]!) || bytes[i] === COMMA)) i++
    const from = i
    i = elementEnd(bytes, i)
    try {
      secureParse('[' + bytes.toString('utf8', from, i) + ']', policy)
    } catch (alone) {
      return parseFailure(alone, bytes, from, i, start + from, 1, { item: first + k })
    }
  }
  const detail = isForbiddenPropertyError(err) ? 'forbidden property' : String(err)
  return invalidJsonError(detail, { offset: start, item: first })
}
