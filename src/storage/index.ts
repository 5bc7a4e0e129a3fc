export {
  isValidBlobKey,
  validateBlobKey,
  validateBlobPrefix,
  type BlobDigest,
  type BlobInfo,
  type BlobStore,
  type PutOptions,
  type PutResult,
} from './blob-store.js';
export {
  BlobNotFoundError,
  BlobRetainedError,
  InvalidKeyError,
  InvalidStoreConfigError,
  isStorageError,
  StorageError,
  StorageUnavailableError,
  type StorageErrorCode,
} from './errors.js';
export { LocalDirectoryStore, type LocalDirectoryStoreOptions } from './local-directory-store.js';
export { S3Store, type S3StoreOptions } from './s3-store.js';
export { deviceIdOf, onSameDevice } from './device.js';
export { parseBlobStoreUrl, type BlobStoreCredentials } from './config.js';
