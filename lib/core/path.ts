// The path rules, in one place: how a `path` option is parsed, what each segment matches, and
// the words of every path fault. The array scanner's navigator (on the bytes of a streamed body)
// and `request.batches()` on a body parsed whole both follow these, so a body gets the same
// answer, and the same message, whichever way it came.
//
// Dot paths name what to stream inside a JSON body: 'items', 'data.rows', 'a.0.b', 'data.*.rows'.
// A segment spelled as a canonical non-negative integer ('0', '17', not '01') becomes a number
// and indexes an array; `*` matches every key of an object or every index of an array at that
// level; every other segment is an object key.

export type PathSegment = string | number

/** The segment that matches every key or index at its level. */
export const WILDCARD = '*'

const INDEX = /^(?:0|[1-9][0-9]*)$/

export function parsePath (path: string | undefined): PathSegment[] {
  if (path === undefined || path === '') return []
  if (typeof path !== 'string') {
    throw new TypeError(`A path must be a string, got ${typeof path}`)
  }
  const segments: PathSegment[] = []
  for (const part of path.split('.')) {
    if (part === '') {
      throw new TypeError(`Invalid path "${path}": empty segment (paths look like "items", "data.rows" or "data.*.rows")`)
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

export function hasWildcard (segments: readonly PathSegment[]): boolean {
  return segments.includes(WILDCARD)
}

/** The container a segment steps into: an object for a key, an array for an index, either for `*`. */
export function acceptsContainer (segment: PathSegment, isArray: boolean): boolean {
  return segment === WILDCARD || isArray === (typeof segment === 'number')
}

/** Whether `segment` matches the key or index `at` of its container. */
export function matches (segment: PathSegment, at: string | number): boolean {
  return segment === WILDCARD || segment === at
}

// The words of path faults. `where` is the concrete path of the value at fault (`data.3`), which
// names it even when the path has wildcards; '' is the top level.

function named (where: string): string {
  return where === '' ? 'the top-level value' : `"${where}"`
}

/** The value at `where` is not the container the path steps into, or not the streamed kind. */
export function foundDetail (found: string, where: string, last: boolean, wildcard: boolean): string {
  if (where === '') return `the top-level value is ${found}`
  return last && !wildcard ? `found ${found}` : `found ${found} at "${where}"`
}

/** An object on the path ended without the key the path names; `key` is the missing value's concrete path. */
export function absentKeyDetail (key: string, last: boolean, wildcard: boolean): string {
  return last && !wildcard ? 'the key is absent' : `the key "${key}" is absent`
}

/** An array on the path ended before the index the path names. */
export function shortArrayDetail (where: string, count: number): string {
  const array = where === '' ? 'the top-level array' : `the array at "${where}"`
  return `${array} has ${count} element${count === 1 ? '' : 's'}`
}

export function removedConstructorDetail (where: string): string {
  return `the "constructor" object at ${named(where)} is removed by constructorAction 'remove'`
}

/** A key given twice where the path (a key, a wildcard or entries) takes it: JSON.parse would keep the last. */
export function givenTwiceDetail (key: string): string {
  return `nexure cannot stream a path given twice: key "${key}" appears again`
}

/** What a path fault's error names as the path: the path given, or the top level. */
export function pathLabel (path: string): string {
  return path === '' ? 'the top level' : `path "${path}"`
}

/**
 * The value at `segments` in a value parsed whole, by the rules above, or `undefined` when the
 * path does not lead to one (`'*'` segments are not walked here: a parsed object has lost its
 * document order and its duplicate keys, which only the bytes still have).
 */
export function valueAt (value: unknown, segments: readonly PathSegment[]): unknown {
  for (const segment of segments) {
    if (value === null || typeof value !== 'object' || segment === WILDCARD) return undefined
    if (!acceptsContainer(segment, Array.isArray(value)) || !Object.hasOwn(value, segment)) return undefined
    value = (value as Record<string | number, unknown>)[segment]
  }
  return value
}
