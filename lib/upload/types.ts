import type { SavedUploads, StreamUploadRouteOptions, UploadedFile, UploadFields, UploadStats, ResolvedUploadOptions } from './options.js'
import type { DiskStoredFile } from './storage.js'
import type { UploadState } from './request-uploads.js'
import { kUploadRouteOptions, kUploadState } from '../symbols.js'

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Iterates the request's files, each one yielded once it is completely stored (with disk
     * storage, in the request's own temp directory, removed after the response unless
     * `keepFiles`). Text fields fill `request.uploadFields` as they arrive. Call at most once
     * per request. With another storage, name what it stores: `uploads<S3StoredFile>()`.
     */
    uploads<Stored extends object = DiskStoredFile>(): AsyncIterableIterator<UploadedFile<Stored>>
    /** Text fields received so far by `uploads()` / `saveUploads()`. */
    readonly uploadFields: UploadFields
    /** Consumes the whole body: every file stored, every field; at most once per request. */
    saveUploads<Stored extends object = DiskStoredFile>(): Promise<SavedUploads<Stored>>
    /**
     * Live progress of this request's upload: bytes received, files stored, the file being
     * received. A fresh snapshot at every read; zeros for a request that is not multipart.
     */
    readonly uploadStats: UploadStats
    [kUploadState]?: UploadState | null
  }
  interface FastifyContextConfig {
    /** Per-route upload options, validated when the route is registered. */
    streamUpload?: StreamUploadRouteOptions
    [kUploadRouteOptions]?: ResolvedUploadOptions
  }
}
