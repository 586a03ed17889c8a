// Dot paths name the array to stream inside a JSON body: 'items', 'data.rows', 'a.0.b'.
// A segment spelled as a canonical non-negative integer ('0', '17', not '01') becomes a number
// and indexes an array; every other segment is an object key.

export type PathSegment = string | number

const INDEX = /^(?:0|[1-9][0-9]*)$/

export function parsePath (path: string | undefined): PathSegment[] {
  if (path === undefined || path === '') return []
  if (typeof path !== 'string') {
    throw new TypeError(`A path must be a string, got ${typeof path}`)
  }
  const segments: PathSegment[] = []
  for (const part of path.split('.')) {
    if (part === '') {
      throw new TypeError(`Invalid path "${path}": empty segment (paths look like "items" or "data.rows")`)
    }
    const index = INDEX.test(part) ? Number(part) : NaN
    segments.push(Number.isSafeInteger(index) ? index : part)
  }
  return segments
}

/** The path up to (and including) segment `count - 1`, for messages. */
export function formatPath (segments: readonly PathSegment[], count = segments.length): string {
  return segments.slice(0, count).join('.')
}
