import type { Readable } from 'node:stream';
import type { RegistryRecords } from './registry-records.js';

/** A blob in the store: its name (the sha256 of its bytes) and its size. */
export interface StoredBlob {
  sha256: string;
  size: number;
}

export interface PutOptions {
  /** The Content-Length, when known: an upload that cannot fit is refused before a byte is written. */
  expectedBytes?: number;
  /**
   * Called once the bytes are hashed and stored under a temporary name, before the blob is published under its
   * sha256. The upload takes its (pending) reference here, so a garbage collection can never remove the blob between
   * its publication and the version that uses it (blob-references.ts). A throw abandons the upload.
   */
  beforePublish?: (blob: StoredBlob) => Promise<void>;
}

/** What the API and the workers know of where models are kept: a folder (file store) or a bucket (S3 store). */
export interface ModelStore {
  /** Where the store is, for messages to operators (a folder; a bucket URL with its prefix). Never a credential. */
  describeLocation(): string;
  /**
   * Prepares the store (folders; a bucket check) and removes what uploads that died left behind.
   * @throws Error naming what is wrong (a bucket that does not exist, credentials refused) so start-up can say it.
   */
  init(): Promise<void>;
  /** The durable registry records of one deployment (its queue prefix), kept beside the blobs. */
  registryRecords(prefix: string): RegistryRecords;
  /**
   * Streams `source` into the store, hashing as it goes, with memory flat whatever the size; content-addressed: the
   * blob's name is the sha256 of its bytes, known only once the stream ended.
   * @throws GantryError(PAYLOAD_TOO_LARGE) past `maxBytes`; GantryError(INSUFFICIENT_STORAGE, 507) past the store's
   *   room; nothing is left behind on any failure.
   */
  put(source: Readable, maxBytes: number, options?: PutOptions): Promise<StoredBlob>;
  exists(sha256: string): Promise<boolean>;
  /**
   * The blob's bytes, as stored (the reader verifies them against the name).
   * @throws GantryError(NOT_FOUND) when the blob is not in the store.
   */
  read(sha256: string): Promise<Readable>;
  /**
   * The blob's file on this machine when the store keeps blobs in a local (or mounted) folder; undefined for a store
   * that must be read through `read` (an object store). Workers load a local blob in place instead of copying it.
   */
  localPathOf?(sha256: string): string;
  /** Removes a blob (only the garbage collection calls it, blob-collector.ts). */
  remove(sha256: string): Promise<void>;
  /** Every blob the store holds. */
  listBlobs(): Promise<StoredBlob[]>;
  /** The sha256 of every blob a live version record names, over every deployment keeping records in this store. */
  blobsNamedByRecords(): Promise<Set<string>>;
  /** The sha256 of every warm-up sample a live version record names, over every deployment in this store. */
  warmupSamplesNamedByRecords(): Promise<Set<string>>;
  /** Warm-up samples (warmup-samples.ts), small JSON texts named by their sha256, kept beside the blobs. */
  readonly warmupSamples: WarmupSampleFiles;
}

/** Where warm-up samples are kept: the same place as the blobs, so every worker of every machine reads them. */
export interface WarmupSampleFiles {
  /** Stores a sample's text durably; the same text stored again is made young again (a collection spares it). */
  put(sha256: string, text: string): Promise<void>;
  /** A sample's text, or undefined when it is not stored. */
  get(sha256: string): Promise<string | undefined>;
  /** Every stored sample with the time it was last stored (ms since the epoch). */
  list(): Promise<Array<{ sha256: string; storedAt: number }>>;
  remove(sha256: string): Promise<void>;
}
