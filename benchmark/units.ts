// Sizes are binary: 1 KB = 1024 bytes, 1 MB = 1024 KB, as in nexure's own options (1 MiB
// threshold). "500MB" is therefore 524,288,000 bytes, just under V8's ~512 Mi-character string
// limit, so the buffering approach can still (barely) build the body as one string.

const UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }

/**
 * A kit's integer flag, checked: `--name` must be an integer from `min` (to `max`, when given);
 * anything else throws, naming the flag and what it got, instead of falling back to a default.
 */
export function integerFlag (name: string, text: string, min: number, max = Infinity): number {
  const value = Number(text)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`--${name} must be an integer ${max === Infinity ? `of at least ${min}` : `from ${min} to ${max}`}, got ${JSON.stringify(text)}`)
  }
  return value
}

/** Parses `100KB`, `5MB`, `1.5GB`, `2048` (bytes) into bytes. */
export function parseSize (text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KIB|MIB|GIB)?\s*$/i.exec(text)
  if (match === null) throw new Error(`not a size: ${JSON.stringify(text)} (expected e.g. 100KB, 5MB, 2GB)`)
  const unit = (match[2] ?? 'B').toUpperCase().replace('IB', 'B')
  const bytes = Math.round(Number(match[1]) * (UNITS[unit] ?? 1))
  if (bytes < 2) throw new Error(`size too small: ${text} (a JSON array needs at least 2 bytes)`)
  return bytes
}

/** `524288000` → `500MB`; the inverse of parseSize for the sizes people type. */
export function formatSize (bytes: number): string {
  for (const unit of ['GB', 'MB', 'KB'] as const) {
    const scale = UNITS[unit] as number
    if (bytes >= scale) {
      const value = bytes / scale
      return `${Number.isInteger(value) ? value : value.toFixed(1)}${unit}`
    }
  }
  return `${bytes}B`
}

/** Bytes as mebibytes with one decimal, for tables. */
export function mb (bytes: number): string {
  return (bytes / 1024 ** 2).toFixed(1)
}

export function median (values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] as number : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}
