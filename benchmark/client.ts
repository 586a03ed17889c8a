import type { ClientJob } from './protocol.js'
import { sendImport } from './send-import.js'
import { sendConcurrentJsonArrays } from './send-concurrent.js'
import { sendJsonArray } from './send-json.js'
import { sendUpload } from './send-upload.js'

// The benchmark client, a process of its own so that generating and sending the body never
// competes with the server's event loop. Forked with the job as JSON in argv[2]; sends its
// result back over IPC.

if (process.send === undefined || process.argv[2] === undefined) {
  console.error('client.js is forked by the benchmark: client.js <job JSON> (with an IPC channel)')
  process.exit(2)
}
const job = JSON.parse(process.argv[2]) as ClientJob
const send = { upload: sendUpload, import: sendImport, json: sendJsonArray, 'json-concurrent': sendConcurrentJsonArrays }[job.kind]
const result = await send(job)
process.send(result, () => process.exit(0))
