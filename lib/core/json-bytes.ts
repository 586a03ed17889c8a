// Bytes of JSON text, as the array scanner and the path navigator read them: the structural
// bytes, byte classes for tight loops, and how to name a byte in a message.

export const QUOTE = 0x22
export const BACKSLASH = 0x5c
export const COMMA = 0x2c
export const COLON = 0x3a
export const OPEN_BRACE = 0x7b
export const CLOSE_BRACE = 0x7d
export const OPEN_BRACKET = 0x5b
export const CLOSE_BRACKET = 0x5d
export const BOM = [0xef, 0xbb, 0xbf]
export const EMPTY = Buffer.alloc(0)

// Byte classes for the element loop: 1 a quote, 2 an opening bracket, 3 a closing one.
export const CONTAINER_CLASS = new Uint8Array(256)
CONTAINER_CLASS[QUOTE] = 1
CONTAINER_CLASS[OPEN_BRACE] = 2
CONTAINER_CLASS[OPEN_BRACKET] = 2
CONTAINER_CLASS[CLOSE_BRACE] = 3
CONTAINER_CLASS[CLOSE_BRACKET] = 3

// Bytes that end a number/true/false/null token. Anything else stays in the token and the parse
// call judges it, so 'tru', '1x' and stray UTF-8 are rejected by JSON.parse itself.
export const ENDS_SCALAR = new Uint8Array(256)
for (const byte of [0x20, 0x09, 0x0a, 0x0d, COMMA, COLON, QUOTE, OPEN_BRACE, CLOSE_BRACE, OPEN_BRACKET, CLOSE_BRACKET]) {
  ENDS_SCALAR[byte] = 1
}

// Bytes that may start a number/true/false/null. Checking the first byte keeps a stray byte
// (a BOM, which a lone parse call would strip) from passing as the start of a value.
export const STARTS_SCALAR = new Uint8Array(256)
for (const byte of Buffer.from('-0123456789tfn')) STARTS_SCALAR[byte] = 1

export function describeFirstByte (byte: number): string {
  if (byte === OPEN_BRACE) return 'an object'
  if (byte === OPEN_BRACKET) return 'an array'
  if (byte === QUOTE) return 'a string'
  if (byte === 0x74 || byte === 0x66) return 'a boolean'
  if (byte === 0x6e) return 'null'
  return 'a number'
}

export function describeByte (byte: number): string {
  return byte >= 0x21 && byte < 0x7f ? `'${String.fromCharCode(byte)}'` : `byte 0x${byte.toString(16).padStart(2, '0').toUpperCase()}`
}

export function isWhitespace (byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09
}

/** Where the string whose opening quote is just before bytes[i] ends (after its closing quote). */
export function stringEnd (bytes: Uint8Array, i: number): number {
  while (i < bytes.length) {
    const c = bytes[i]!
    if (c === QUOTE) return i + 1
    i += c === BACKSLASH ? 2 : 1
  }
  return bytes.length
}

/** Where the element starting at bytes[i] ends, in bytes the scanner has already checked. */
export function elementEnd (bytes: Uint8Array, i: number): number {
  const c = bytes[i]!
  if (c === QUOTE) return stringEnd(bytes, i + 1)
  if (c !== OPEN_BRACE && c !== OPEN_BRACKET) {
    while (i < bytes.length && ENDS_SCALAR[bytes[i]!] === 0) i++
    return i
  }
  let depth = 0
  while (i < bytes.length) {
    const d = bytes[i++]!
    if (d === QUOTE) i = stringEnd(bytes, i)
    else if (d === OPEN_BRACE || d === OPEN_BRACKET) depth++
    else if ((d === CLOSE_BRACE || d === CLOSE_BRACKET) && --depth === 0) return i
  }
  return i
}
