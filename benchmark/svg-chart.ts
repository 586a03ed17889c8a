// A small hand-written SVG line chart: log-scale axes, one polyline per series, a legend, and a
// marker with a label where a series has no value (a run that failed, e.g. out of memory).
// Self-contained (white background, inline styles), so GitHub, a README and a browser show it.

export interface ChartPoint {
  x: number
  /** The value, or null where the run failed; `failure` says why. */
  y: number | null
  failure?: string
}

export interface ChartSeries {
  name: string
  color: string
  points: ChartPoint[]
  /** Dashed line (for a secondary measure). */
  dashed?: boolean
  /** Break the line where consecutive points are further apart than this on x (missing samples). */
  breakOver?: number
}

export interface LineChartOptions {
  title: string
  subtitle?: string
  xLabel: string
  yLabel: string
  series: ChartSeries[]
  formatX: (x: number) => string
  formatY: (y: number) => string
  /** Log scale on y (default) or linear from 0. */
  yScale?: 'log' | 'linear'
  /** Log scale on x (default) or linear from the smallest x. */
  xScale?: 'log' | 'linear'
  /** Ticks on x at these values instead of at every data x. */
  xTicks?: number[]
  /** A dot at every point (default); off for dense time series. */
  showMarkers?: boolean
  width?: number
  height?: number
}

const FONT = 'font-family="-apple-system,Segoe UI,Helvetica,Arial,sans-serif"'

export function escapeXml (text: string): string {
  return text.replace(/[<>&"']/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] as string)
}

function niceLogTicks (min: number, max: number): number[] {
  const ticks: number[] = []
  for (let exponent = Math.floor(Math.log10(min)); exponent <= Math.ceil(Math.log10(max)); exponent++) {
    for (const mantissa of [1, 2, 5]) {
      const value = mantissa * 10 ** exponent
      if (value >= min * 0.999 && value <= max * 1.001) ticks.push(value)
    }
  }
  return ticks
}

/** The largest of 1, 2, 5 × 10^k at or below `value`. */
function stepBelow (value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value))
  return ([5, 2, 1].find(m => m * magnitude <= value) ?? 1) * magnitude
}

/** The smallest of 1, 2, 5 × 10^k at or above `value`. */
function stepAbove (value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value))
  return ([1, 2, 5, 10].find(m => m * magnitude >= value) ?? 10) * magnitude
}

export function niceLinearTicks (max: number): number[] {
  const rough = max / 5
  const magnitude = 10 ** Math.floor(Math.log10(rough))
  const step = ([1, 2, 2.5, 5, 10].find(m => m * magnitude >= rough) ?? 10) * magnitude
  const ticks: number[] = []
  for (let value = 0; ticks.length < 50; value += step) {
    ticks.push(value)
    if (value >= max) break
  }
  return ticks
}

export function lineChart (options: LineChartOptions): string {
  const width = options.width ?? 760
  const height = options.height ?? 440
  const left = 96
  const right = 170
  const top = options.subtitle === undefined ? 48 : 64
  const bottom = 58
  const plotWidth = width - left - right
  const plotHeight = height - top - bottom

  const xs = options.series.flatMap(s => s.points.map(p => p.x))
  const ys = options.series.flatMap(s => s.points.flatMap(p => p.y === null || p.y <= 0 ? [] : [p.y]))
  const xLog = (options.xScale ?? 'log') === 'log'
  const yLog = (options.yScale ?? 'log') === 'log'
  const xMinData = Math.min(...xs)
  const xMaxData = Math.max(...xs)
  const xMin = xLog ? xMinData / 1.5 : xMinData
  const xMax = xLog ? xMaxData * 1.5 : Math.max(xMaxData, ...(options.xTicks ?? []))
  const yMinData = ys.length > 0 ? Math.min(...ys) : 1
  const yMaxData = ys.length > 0 ? Math.max(...ys) : 10
  const yMin = yLog ? stepBelow(yMinData / 1.1) : 0
  const yMax = yLog ? stepAbove(yMaxData * 1.1) : (niceLinearTicks(yMaxData * 1.1).at(-1) as number)
  const yTicks = yLog ? niceLogTicks(yMin, yMax) : niceLinearTicks(yMaxData * 1.1)

  const px = (x: number): number => left + (xLog
    ? (Math.log10(x) - Math.log10(xMin)) / (Math.log10(xMax) - Math.log10(xMin))
    : (xMax === xMin ? 0.5 : (x - xMin) / (xMax - xMin))) * plotWidth
  const py = (y: number): number => top + plotHeight - (yLog
    ? (Math.log10(y) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))
    : y / yMax) * plotHeight
  const r = (n: number): string => n.toFixed(1)

  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`)
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`)
  out.push(`<text x="${left}" y="26" font-size="17" font-weight="600" fill="#111">${escapeXml(options.title)}</text>`)
  if (options.subtitle !== undefined) out.push(`<text x="${left}" y="46" font-size="12" fill="#555">${escapeXml(options.subtitle)}</text>`)

  for (const tick of yTicks) {
    const y = py(tick)
    out.push(`<line x1="${left}" y1="${r(y)}" x2="${left + plotWidth}" y2="${r(y)}" stroke="#e5e5e5"/>`)
    out.push(`<text x="${left - 8}" y="${r(y + 4)}" font-size="12" fill="#333" text-anchor="end">${escapeXml(options.formatY(tick))}</text>`)
  }
  const xTicks = options.xTicks ?? [...new Set(xs)].sort((a, b) => a - b)
  for (const tick of xTicks) {
    const x = px(tick)
    out.push(`<line x1="${r(x)}" y1="${top}" x2="${r(x)}" y2="${top + plotHeight}" stroke="#f0f0f0"/>`)
    out.push(`<text x="${r(x)}" y="${top + plotHeight + 18}" font-size="12" fill="#333" text-anchor="middle">${escapeXml(options.formatX(tick))}</text>`)
  }
  out.push(`<rect x="${left}" y="${top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#999"/>`)
  out.push(`<text x="${left + plotWidth / 2}" y="${height - 14}" font-size="13" fill="#111" text-anchor="middle">${escapeXml(options.xLabel)}</text>`)
  out.push(`<text transform="translate(18 ${top + plotHeight / 2}) rotate(-90)" font-size="13" fill="#111" text-anchor="middle">${escapeXml(options.yLabel)}</text>`)

  options.series.forEach((series, index) => {
    const dash = series.dashed === true ? ' stroke-dasharray="6 4"' : ''
    const good = series.points.filter(p => p.y !== null && p.y > 0).sort((a, b) => a.x - b.x)
    const segments: ChartPoint[][] = []
    for (const p of good) {
      const last = segments[segments.length - 1]
      const previous = last?.[last.length - 1]
      if (last === undefined || previous === undefined || (series.breakOver !== undefined && p.x - previous.x > series.breakOver)) segments.push([p])
      else last.push(p)
    }
    for (const segment of segments.filter(s => s.length > 1)) {
      const points = segment.map(p => `${r(px(p.x))},${r(py(p.y as number))}`).join(' ')
      out.push(`<polyline points="${points}" fill="none" stroke="${series.color}" stroke-width="2.5"${dash}/>`)
    }
    for (const p of options.showMarkers === false ? [] : good) {
      out.push(`<circle cx="${r(px(p.x))}" cy="${r(py(p.y as number))}" r="4" fill="${series.color}"><title>${escapeXml(`${series.name}, ${options.formatX(p.x)}: ${options.formatY(p.y as number)}`)}</title></circle>`)
    }
    for (const p of series.points.filter(p => p.y === null)) {
      const x = px(p.x)
      const y = top + 14 + index * 16
      out.push(`<text x="${r(x)}" y="${r(y)}" font-size="14" font-weight="700" fill="${series.color}" text-anchor="middle">×</text>`)
      out.push(`<text x="${r(x + 8)}" y="${r(y)}" font-size="11" fill="${series.color}">${escapeXml(p.failure ?? 'failed')}</text>`)
    }
    const ly = top + 10 + index * 22
    const lx = left + plotWidth + 16
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 26}" y2="${ly}" stroke="${series.color}" stroke-width="3"${dash}/>`)
    out.push(`<text x="${lx + 34}" y="${ly + 4}" font-size="13" fill="#111">${escapeXml(series.name)}</text>`)
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}

export interface BarChartOptions {
  title: string
  subtitle?: string
  bars: Array<{ label: string, value: number }>
  /** A vertical line at this value (1 for a ratio), drawn over the bars. */
  reference?: number
  formatValue: (value: number) => string
  width?: number
}

/** Horizontal bars from 0, one per row, labelled on the left and valued on the right. */
export function barChart (options: BarChartOptions): string {
  const width = options.width ?? 760
  const rowHeight = 28
  const left = 250
  const right = 70
  const top = options.subtitle === undefined ? 48 : 64
  const height = top + options.bars.length * rowHeight + 40
  const plotWidth = width - left - right
  const max = Math.max(options.reference ?? 0, ...options.bars.map(b => b.value)) * 1.05
  const px = (value: number): number => left + (max === 0 ? 0 : value / max) * plotWidth
  const r = (n: number): string => n.toFixed(1)
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`)
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`)
  out.push(`<text x="16" y="26" font-size="17" font-weight="600" fill="#111">${escapeXml(options.title)}</text>`)
  if (options.subtitle !== undefined) out.push(`<text x="16" y="46" font-size="12" fill="#555">${escapeXml(options.subtitle)}</text>`)
  options.bars.forEach((bar, index) => {
    const y = top + index * rowHeight
    out.push(`<text x="${left - 10}" y="${y + 18}" font-size="13" fill="#111" text-anchor="end">${escapeXml(bar.label)}</text>`)
    out.push(`<rect x="${left}" y="${y + 4}" width="${r(px(bar.value) - left)}" height="${rowHeight - 8}" fill="#2ca02c"/>`)
    out.push(`<text x="${r(px(bar.value) + 6)}" y="${y + 18}" font-size="12" fill="#111">${escapeXml(options.formatValue(bar.value))}</text>`)
  })
  if (options.reference !== undefined) {
    const x = px(options.reference)
    out.push(`<line x1="${r(x)}" y1="${top}" x2="${r(x)}" y2="${top + options.bars.length * rowHeight}" stroke="#d62728" stroke-width="1.5" stroke-dasharray="5 3"/>`)
    out.push(`<text x="${r(x)}" y="${top + options.bars.length * rowHeight + 16}" font-size="12" fill="#d62728" text-anchor="middle">${escapeXml(options.formatValue(options.reference))}</text>`)
  }
  out.push('</svg>')
  return out.join('\n') + '\n'
}
