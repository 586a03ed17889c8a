// The one UTF-8 decode of the engines and of whole bodies: the text of a byte range, exactly as
// `buffer.toString('utf8', start, end)` gives it, in less time where the Node line allows.
//
// Before Node 24, V8 decodes UTF-8 that holds any non-ASCII byte at ~0.7 GB/s, while ICU
// transcodes the same bytes to UTF-16 at ~1.5 GB/s, and copying UTF-16 into a string costs
// little: a 10 KB NDJSON body with a few accented names decodes in 22 us through toString and in
// 10 us through transcode on Node 20 (15 and 7 us on Node 22). Node 24 decodes with simdutf (2.6
// us) and gains nothing. The transcode has a fixed cost of ~2 us (the ICU converters it opens),
// so it only pays from a few KiB up: below MIN_TRANSCODE, toString. ASCII is decoded fast by V8
// on every line, and invalid UTF-8 is left to toString, whose replacement characters are the
// reference (transcode would throw); both checks are simdutf's, ~0.3 us for 10 KB.
// (`node` microbenchmark, medians of 11 rounds of 2,000 calls.)

import { isAscii, isUtf8, transcode } from 'node:buffer'

/** Ranges shorter than this are decoded by V8 on every line: transcode's fixed cost is ~2 us. */
export const MIN_TRANSCODE = 4 * 1024

const NODE_MAJOR = Number(process.versions.node.split('.')[0])

function decodedByV8 (bytes: Buffer, start: number, end: number): string {
  return bytes.toString('utf8', start, end)
}

function decodedByIcu (bytes: Buffer, start: number, end: number): string {
  if (end - start < MIN_TRANSCODE) return bytes.toString('utf8', start, end)
  const view = start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end)
  if (isAscii(view) || !isUtf8(view)) return view.toString('utf8')
  return transcode(view, 'utf8', 'utf16le').toString('utf16le')
}

// A Node built without ICU has no transcode: it keeps toString.
function icuTranscodes (): boolean {
  try {
    return transcode(Buffer.from('é'), 'utf8', 'utf16le').toString('utf16le') === 'é'
  } catch {
    return false
  }
}

/** Whether `utf8Text` goes through ICU: then a long range decodes faster in one call than chunk by chunk. */
export const TRANSCODES = NODE_MAJOR < 24 && icuTranscodes()

/** The text of UTF-8 bytes [start, end) of `bytes`: `bytes.toString('utf8', start, end)`, decoded the fastest way this Node line has. */
export const utf8Text: (bytes: Buffer, start: number, end: number) => string = TRANSCODES ? decodedByIcu : decodedByV8
