import { fileURLToPath } from 'node:url'
import path from 'node:path'

// Reading a V8 CPU profile (the `.cpuprofile` Chrome DevTools opens): self time per function.

export interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
  columnNumber: number
}

export interface CpuProfile {
  nodes: Array<{ id: number, callFrame: CallFrame }>
  startTime: number
  endTime: number
  samples?: number[]
  timeDeltas?: number[]
}

export interface SelfTime {
  functionName: string
  /** `file:line:column` (1-based), relative to `root` where the file lies under it. */
  location: string
  selfMs: number
  /** Share of the profile's whole duration. */
  percent: number
}

function locate (frame: CallFrame, root: string): string {
  if (frame.url === '') return ''
  let file = frame.url
  if (file.startsWith('file://')) {
    file = fileURLToPath(file)
    const relative = path.relative(root, file)
    if (!relative.startsWith('..')) file = relative
  }
  return `${file}:${frame.lineNumber + 1}:${frame.columnNumber + 1}`
}

/**
 * Self time per function, largest first. A sample's duration is the gap to the next sample
 * (the last one runs to the profile's end), as DevTools counts it; nodes of the same function
 * (one per call path) are summed.
 */
export function selfTimes (profile: CpuProfile, root: string): SelfTime[] {
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  const frames = new Map(profile.nodes.map(node => [node.id, node.callFrame]))
  const totals = new Map<string, SelfTime>()
  let timestamp = profile.startTime
  const timestamps = deltas.map(delta => (timestamp += delta))
  for (let i = 0; i < samples.length; i++) {
    const frame = frames.get(samples[i] as number)
    const start = timestamps[i]
    if (frame === undefined || start === undefined) continue
    const end = timestamps[i + 1] ?? profile.endTime
    const location = locate(frame, root)
    const key = `${frame.functionName}@${location}`
    const entry = totals.get(key) ?? { functionName: frame.functionName === '' ? '(anonymous)' : frame.functionName, location, selfMs: 0, percent: 0 }
    entry.selfMs += Math.max(0, end - start) / 1000
    totals.set(key, entry)
  }
  const durationMs = (profile.endTime - profile.startTime) / 1000
  const list = [...totals.values()].sort((a, b) => b.selfMs - a.selfMs)
  for (const entry of list) entry.percent = durationMs > 0 ? (entry.selfMs / durationMs) * 100 : 0
  return list
}

export function selfTimeTable (entries: SelfTime[]): string {
  const lines = ['| Self time (ms) | % | Function | Location |', '|--:|--:|---|---|']
  for (const entry of entries) {
    lines.push(`| ${entry.selfMs.toFixed(1)} | ${entry.percent.toFixed(1)} | ${entry.functionName} | ${entry.location} |`)
  }
  return lines.join('\n') + '\n'
}
