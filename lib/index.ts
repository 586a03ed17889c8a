// The public surface of nexure. Benchmarks and examples import only from here.
export { streamBody } from './plugins/stream-body.js'
export { streamUpload } from './plugins/stream-upload.js'
export type {
  StreamUploadOptions,
  StreamUploadRouteOptions,
  UploadedFile,
  UploadedFileBase,
  UploadFields,
  SavedUploads,
  UploadStats,
  FileFilter
} from './upload/options.js'
export type { StorageEngine, StorageSink, UploadFileInfo, DiskStoredFile } from './upload/storage.js'
export { s3Storage } from './upload/s3-storage.js'
export type { S3StorageOptions, S3StoredFile, S3ClientLike } from './upload/s3-storage.js'
export { BufferPool } from './core/buffer-pool.js'
export type { BufferPoolOptions, BufferPoolStats } from './core/buffer-pool.js'
export type { PressureBounds } from './stream/pressure.js'
export { JsonArrayScanner } from './core/array-scanner.js'
export type { JsonScannerOptions } from './core/array-scanner.js'
export { FilterEngine } from './core/filter-engine.js'
export type { FilterEngineOptions, PathFilter } from './core/engine-options.js'
export { NdjsonSplitter } from './core/ndjson-splitter.js'
export type { NdjsonSplitterOptions, RecordFault } from './core/ndjson-splitter.js'
export type {
  StreamBodyOptions,
  StreamBodyRouteOptions,
  BatchesOptions,
  StreamStats,
  SkippedItem,
  TransformFactory
} from './options.js'
export * as errors from './errors.js'
