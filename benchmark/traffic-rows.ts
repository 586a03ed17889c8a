import { gzipSync } from 'node:zlib'
import { itemCount, itemText } from './json-body.js'

// The requests of `npm run bench:traffic`: what an ordinary API receives, not bulk bodies.

export const TRAFFIC_APPS = ['fastify', 'nexure'] as const
export type TrafficApp = typeof TRAFFIC_APPS[number]

export const TRAFFIC_LABELS: Record<TrafficApp, string> = {
  fastify: 'Fastify alone',
  nexure: 'Fastify + streamBody'
}

export function isTrafficApp (value: string): value is TrafficApp {
  return (TRAFFIC_APPS as readonly string[]).includes(value)
}

export interface TrafficRow {
  /** Short name, also what `--rows` takes. */
  name: string
  label: string
  method: 'GET' | 'POST'
  path: string
  headers: Record<string, string>
  body: Buffer | null
  /** The `items` the server must answer, checked on a sample request before the run. */
  items: number | null
}

/** A JSON array of exactly `size` bytes (rows of the benchmark's usual shape, padded with spaces). */
export function jsonArrayOf (size: number): Buffer {
  const count = itemCount(size)
  const items: string[] = []
  for (let i = 0; i < count; i++) items.push(itemText(i))
  const text = `[${items.join(',')}`
  return Buffer.from(text + ' '.repeat(size - Buffer.byteLength(text) - 1) + ']')
}

function ndjsonOf (size: number): { body: Buffer, items: number } {
  const lines: string[] = []
  let bytes = 0
  for (let i = 0; bytes + itemText(i).length + 1 <= size; i++) {
    lines.push(itemText(i))
    bytes += Buffer.byteLength(itemText(i)) + 1
  }
  return { body: Buffer.from(lines.join('\n') + '\n'), items: lines.length }
}

const JSON_HEADERS = { 'content-type': 'application/json' }

function jsonRow (name: string, label: string, size: number, path = '/json'): TrafficRow {
  return { name, label, method: 'POST', path, headers: JSON_HEADERS, body: jsonArrayOf(size), items: itemCount(size) }
}

export function trafficRows (): TrafficRow[] {
  const ndjson = ndjsonOf(10 * 1024)
  const small = jsonArrayOf(1024)
  return [
    { name: 'get', label: 'GET, no body', method: 'GET', path: '/ping', headers: {}, body: null, items: null },
    jsonRow('json-1kb', 'POST JSON 1 KB', 1024),
    jsonRow('json-10kb', 'POST JSON 10 KB', 10 * 1024),
    jsonRow('json-100kb', 'POST JSON 100 KB', 100 * 1024),
    jsonRow('json-1mb', 'POST JSON 1 MB (= streamThreshold)', 1024 * 1024),
    { name: 'ndjson-10kb', label: 'POST NDJSON 10 KB', method: 'POST', path: '/ndjson', headers: { 'content-type': 'application/x-ndjson' }, body: ndjson.body, items: ndjson.items },
    jsonRow('schema-1kb', 'POST JSON 1 KB, schema.body', 1024, '/schema'),
    { name: 'gzip-1kb', label: 'POST JSON 1 KB, gzip', method: 'POST', path: '/gzip', headers: { ...JSON_HEADERS, 'content-encoding': 'gzip' }, body: gzipSync(small), items: itemCount(1024) }
  ]
}
