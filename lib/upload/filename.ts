// A client's file name is untrusted text. It never takes part in building a path: files are
// stored as `upload-<n>` inside the request's own mkdtemp directory. The name is kept only as
// metadata, and even then cleaned so that a handler that later (unwisely) joins it to a path
// cannot be walked out of its directory: no separators of either platform, no `.`/`..`, no
// NUL or other control characters, no drive letters, bounded length.

const MAX_FILENAME_BYTES = 255

// C0 and C1 controls, DEL, and the Unicode bidi overrides that disguise extensions
// ("invoice\u202Efdp.exe" renders as "invoiceexe.pdf").
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g

/** The client's file name reduced to a harmless base name; `''` when nothing usable is left. */
export function sanitizeFilename (name: string | undefined): string {
  if (name === undefined) return ''
  const withoutControls = name.replace(UNSAFE_CHARACTERS, '')
  // Both separators on every platform: a Windows client sends `C:\Users\x\a.txt`.
  const base = withoutControls.split(/[/\\]/).pop() ?? ''
  const withoutDrive = base.replace(/^[A-Za-z]:/, '')
  const trimmed = withoutDrive.trim()
  if (trimmed === '' || /^\.+$/.test(trimmed)) return ''
  return truncateUtf8(trimmed, MAX_FILENAME_BYTES)
}

/** The name a file is stored under: server-chosen, never derived from the request. */
export function storedFileName (index: number): string {
  return `upload-${index}`
}

function truncateUtf8 (text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text
  let out = ''
  let bytes = 0
  for (const character of text) {
    const size = Buffer.byteLength(character)
    if (bytes + size > maxBytes) break
    out += character
    bytes += size
  }
  return out
}
