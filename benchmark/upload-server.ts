import { serveToParent } from './child-server.js'
import { buildUploadApp, isUploadApproach } from './upload-approaches.js'

// One upload benchmark server, forked by upload.ts with `<approach> <tempDir> <maxFileSize> [s3Endpoint]`.

const [approach = '', tempDir = '', maxFileSizeText = '', s3Endpoint = ''] = process.argv.slice(2)
if (!isUploadApproach(approach) || tempDir === '' || !/^\d+$/.test(maxFileSizeText)) {
  console.error(`usage (forked by upload.js): upload-server.js <nexure|nexure-s3|save-request-files|to-buffer> <tempDir> <maxFileSize> [s3Endpoint], got ${process.argv.slice(2).join(' ')}`)
  process.exit(2)
}
await serveToParent(await buildUploadApp(approach, tempDir, Number(maxFileSizeText), s3Endpoint))
