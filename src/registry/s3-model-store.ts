import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  UploadPartCopyCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { randomUUID } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UploadMeter, declaredBytes } from './upload-meter.js';
import { errors } from '../errors.js';
import { staleTemporaryFileMs, type StoreLimits } from './file-model-store.js';
import type { ModelStore, PutOptions, StoredBlob, WarmupSampleFiles } from './model-store.js';
import type { RegistryRecords } from './registry-records.js';
import { S3Bucket, type S3Location } from './s3-bucket.js';
import { S3RegistryRecords, s3BlobsNamedByRecords, s3WarmupSamplesNamedByRecords } from './s3-registry-records.js';
import { S3WarmupSamples } from './s3-warmup-samples.js';

const sha256Pattern = /^[0-9a-f]{64}$/;
const blobFolder = 'blobs/sha256/';
const uploadFolder = 'uploads/';
/** `uploads/<ms since the epoch>-<uuid>`: the time in the name says when an upload began, whatever the server reports. */
const uploadKeyPattern = /(?:^|\/)uploads\/([0-9]{13})-[0-9a-f-]{36}$/;

/** The largest object a single CopyObject may copy (S3's limit); bigger ones are copied part by part. */
const maxSingleCopyBytes = 5 * 1024 ** 3;

/** While an upload streams, the store's size is listed again after every this many bytes (a listing costs a request). */
const recheckEveryBytes = 64 * 1024 ** 2;

export interface S3StoreTuning {
  /** Bytes of each multipart part: memory is about (queueSize + 1) x this per upload. 8 MiB (S3's minimum is 5 MiB). */
  partSizeBytes?: number;
  /** Parts sent at once. 2. */
  queueSize?: number;
  /** Objects above this are copied with UploadPartCopy instead of CopyObject; S3's limit (tests lower it). */
  maxSingleCopyBytes?: number;
  /** Bytes of each part of such a copy. 1 GiB (tests lower it). */
  copyPartBytes?: number;
}

/**
 * Content-addressed model store in an S3-compatible bucket, the same layout as the file store under
 * GANTRY_S3_PREFIX: `blobs/sha256/<sha256>`, `registry/<queue prefix>/…`, `warmup-samples/<sha256>.json`, and
 * `uploads/<time>-<uuid>` for uploads in progress.
 *
 * An upload streams through a sha256 hash into a multipart upload under a temporary key (the name is known only
 * at the end), is copied server-side to its sha256 key once `beforePublish` took its reference, and the temporary
 * is deleted: a reader never sees a blob under a name its bytes do not have, and the API never holds more than a
 * few parts in memory nor writes a byte to its own disk.
 */
export class S3ModelStore implements ModelStore {
  readonly bucket: S3Bucket;
  readonly warmupSamples: WarmupSampleFiles;
  private readonly tuning: Required<S3StoreTuning>;

  constructor(
    location: S3Location,
    private readonly limits: StoreLimits = {},
    tuning: S3StoreTuning = {},
  ) {
    this.bucket = new S3Bucket(location);
    this.warmupSamples = new S3WarmupSamples(this.bucket);
    this.tuning = {
      partSizeBytes: tuning.partSizeBytes ?? 8 * 1024 ** 2,
      queueSize: tuning.queueSize ?? 2,
      maxSingleCopyBytes: tuning.maxSingleCopyBytes ?? maxSingleCopyBytes,
      copyPartBytes: tuning.copyPartBytes ?? 1024 ** 3,
    };
  }

  describeLocation(): string {
    return this.bucket.describe();
  }

  registryRecords(prefix: string): RegistryRecords {
    return new S3RegistryRecords(this.bucket, prefix);
  }

  /**
   * Checks the bucket and the credentials (a clear start-up error otherwise), then removes what uploads that died
   * left: multipart uploads never completed and temporaries never copied, once older than staleTemporaryFileMs (an
   * upload in progress sends a part at least every GANTRY_BODY_IDLE_TIMEOUT_MS or is cut off). Younger ones may
   * belong to another API process uploading now, so they stay.
   */
  async init(): Promise<void> {
    await this.bucket.checkAccess();
    const cutoff = Date.now() - staleTemporaryFileMs;
    for (const upload of await this.multipartUploads(this.bucket.key(uploadFolder))) {
      if (isStale(upload.key, upload.initiated, cutoff)) await this.abortMultipartUpload(upload.key, upload.uploadId);
    }
    for (const object of await this.bucket.list(uploadFolder)) {
      if (isStale(object.key, object.lastModified, cutoff)) await this.bucket.delete(object.key);
    }
  }

  async put(source: Readable, maxBytes: number, options: PutOptions = {}): Promise<StoredBlob> {
    const temporaryKey = this.bucket.key(`${uploadFolder}${Date.now()}-${randomUUID()}`);
    const limited = (this.limits.maxStoreBytes ?? 0) > 0;
    const meter = new UploadMeter<number>(
      maxBytes,
      declaredBytes(options.expectedBytes),
      limited
        ? {
            // The bytes everything else in the store holds (other uploads in progress included).
            measure: () =>
              this.usedBytes(temporaryKey).catch((error: unknown) => {
                throw this.storeFailed(error);
              }),
            check: (otherBytes, bytes, finalSizeKnown) => this.checkRoom(otherBytes, bytes, finalSizeKnown),
            remeasureEveryBytes: recheckEveryBytes,
          }
        : undefined,
    );
    try {
      await meter.checkBeforeStart();
      await this.streamToTemporary(source, meter, temporaryKey);
      const blob = meter.blob();
      await options.beforePublish?.(blob);
      // The same bytes uploaded twice have one name: the copy replaces the object with identical content.
      await this.copy(temporaryKey, this.blobKey(blob.sha256), blob.size).catch((error: unknown) => {
        throw this.storeFailed(error);
      });
      // Published: a temporary that cannot be deleted now is removed by a later init() once stale.
      await this.bucket.delete(temporaryKey).catch(() => undefined);
      return blob;
    } catch (error) {
      await this.removeTemporary(temporaryKey);
      throw error;
    }
  }

  /**
   * Streams `source` through `meter` into a multipart upload of bounded parts (lib-storage buffers `queueSize`
   * parts, then waits for S3). The error that explains the failure wins: the source's (the client went) or the
   * meter's (too large, no room) over the upload's; the upload's (S3 unreachable, refused) over the stream being
   * cut short, which is only what an upload that stopped reading does to it.
   */
  private async streamToTemporary(source: Readable, meter: Transform, temporaryKey: string): Promise<void> {
    const upload = new Upload({
      client: this.bucket.client,
      params: { Bucket: this.bucket.name, Key: temporaryKey, Body: meter },
      partSize: this.tuning.partSizeBytes,
      queueSize: this.tuning.queueSize,
      leavePartsOnError: false,
    });
    const [piped, uploaded] = await Promise.allSettled([
      pipeline(source, meter),
      upload.done().catch((error: unknown) => {
        // A failed upload stops reading: the source would wait for ever on a full buffer.
        meter.destroy(error as Error);
        throw error;
      }),
    ]);
    const streamError: unknown = piped.status === 'rejected' ? piped.reason : undefined;
    const uploadError: unknown = uploaded.status === 'rejected' ? uploaded.reason : undefined;
    if (streamError === undefined && uploadError === undefined) return;
    if (streamError !== undefined && !isStreamCutShort(streamError)) throw streamError;
    if (uploadError !== undefined && !isStreamCutShort(uploadError)) throw this.storeFailed(uploadError);
    // Only streams cut short: the source itself went (a client that closed its connection), not S3.
    throw streamError ?? uploadError;
  }

  /** An S3 failure during an upload as a 503 naming the store (S3Bucket.unavailable); a GantryError passes through. */
  private storeFailed(error: unknown): Error {
    return this.bucket.unavailable('during the upload', error);
  }

  /** Removes every trace of a failed upload: its multipart upload (if lib-storage could not abort it) and its object. */
  private async removeTemporary(temporaryKey: string): Promise<void> {
    try {
      for (const upload of await this.multipartUploads(temporaryKey)) {
        if (upload.key === temporaryKey) await this.abortMultipartUpload(upload.key, upload.uploadId);
      }
      await this.bucket.delete(temporaryKey);
    } catch {
      // The bucket is unreachable now: init() of any API process removes the temporary once it is stale.
    }
  }

  /**
   * Server-side copy of the temporary to the blob's key. CopyObject takes at most 5 GiB; a bigger object is copied
   * with a multipart upload of UploadPartCopy ranges (no byte passes through this process either way).
   */
  private async copy(fromKey: string, toKey: string, size: number): Promise<void> {
    const copySource = `${this.bucket.name}/${encodeURIComponent(fromKey).replace(/%2F/g, '/')}`;
    if (size <= this.tuning.maxSingleCopyBytes) {
      await this.bucket.client.send(new CopyObjectCommand({ Bucket: this.bucket.name, Key: toKey, CopySource: copySource }));
      return;
    }
    const created = await this.bucket.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket.name, Key: toKey }));
    const uploadId = created.UploadId!;
    try {
      const parts: CompletedPart[] = [];
      for (let start = 0, partNumber = 1; start < size; start += this.tuning.copyPartBytes, partNumber++) {
        const end = Math.min(size, start + this.tuning.copyPartBytes) - 1;
        const copied = await this.bucket.client.send(
          new UploadPartCopyCommand({
            Bucket: this.bucket.name,
            Key: toKey,
            UploadId: uploadId,
            PartNumber: partNumber,
            CopySource: copySource,
            CopySourceRange: `bytes=${start}-${end}`,
          }),
        );
        parts.push({ PartNumber: partNumber, ETag: copied.CopyPartResult?.ETag });
      }
      await this.bucket.client.send(
        new CompleteMultipartUploadCommand({ Bucket: this.bucket.name, Key: toKey, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
      );
    } catch (error) {
      await this.abortMultipartUpload(toKey, uploadId).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Refuses (507) an upload that would take the store past GANTRY_MAX_STORE_BYTES once `bytes` of it are stored.
   * (GANTRY_MIN_FREE_DISK_BYTES is about the API's disk, which an upload to S3 never touches.)
   */
  private checkRoom(otherBytes: number, bytes: number, finalSizeKnown: boolean): void {
    const { maxStoreBytes = 0 } = this.limits;
    if (maxStoreBytes <= 0 || otherBytes + bytes <= maxStoreBytes) return;
    const what = finalSizeKnown ? `this upload of ${bytes} bytes` : `this upload (${bytes} bytes so far)`;
    this.limits.onLimitRejection?.('store_bytes');
    throw errors.storeFull(
      `it holds ${otherBytes} bytes and ${what} would bring it to ${otherBytes + bytes}, more than GANTRY_MAX_STORE_BYTES (${maxStoreBytes})`,
    );
  }

  /**
   * Bytes the store holds now but `exceptKey`'s: every blob (a deleted version's too, until the garbage collection
   * removes it), every temporary waiting for its copy, and the parts of every other multipart upload in progress
   * (any API process). Registry records and warm-up samples are small and not counted, as in the file store.
   */
  async usedBytes(exceptKey?: string): Promise<number> {
    let total = 0;
    for (const folder of [blobFolder, uploadFolder]) {
      for (const object of await this.bucket.list(folder)) if (object.key !== exceptKey) total += object.size;
    }
    for (const upload of await this.multipartUploads(this.bucket.key(uploadFolder))) {
      if (upload.key !== exceptKey) total += await this.uploadedPartBytes(upload.key, upload.uploadId);
    }
    return total;
  }

  private async uploadedPartBytes(key: string, uploadId: string): Promise<number> {
    let total = 0;
    let marker: string | undefined;
    do {
      const page = await this.bucket.client
        .send(new ListPartsCommand({ Bucket: this.bucket.name, Key: key, UploadId: uploadId, ...(marker === undefined ? {} : { PartNumberMarker: marker }) }))
        // Completed or aborted since the listing: its bytes are counted elsewhere, or gone.
        .catch(() => undefined);
      if (page === undefined) return total;
      for (const part of page.Parts ?? []) total += part.Size ?? 0;
      marker = page.IsTruncated === true ? page.NextPartNumberMarker : undefined;
    } while (marker !== undefined);
    return total;
  }

  /** Multipart uploads in progress whose keys start with `keyPrefix` (a full key). */
  private async multipartUploads(keyPrefix: string): Promise<Array<{ key: string; uploadId: string; initiated: number }>> {
    const uploads: Array<{ key: string; uploadId: string; initiated: number }> = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await this.bucket.client.send(
        new ListMultipartUploadsCommand({
          Bucket: this.bucket.name,
          Prefix: keyPrefix,
          ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
          ...(uploadIdMarker === undefined ? {} : { UploadIdMarker: uploadIdMarker }),
        }),
      );
      for (const upload of page.Uploads ?? []) {
        if (upload.Key === undefined || upload.UploadId === undefined) continue;
        uploads.push({ key: upload.Key, uploadId: upload.UploadId, initiated: upload.Initiated?.getTime() ?? 0 });
      }
      const truncated = page.IsTruncated === true;
      keyMarker = truncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = truncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker !== undefined);
    return uploads;
  }

  private async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    await this.bucket.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket.name, Key: key, UploadId: uploadId }));
  }

  private blobKey(sha256: string): string {
    if (!sha256Pattern.test(sha256)) throw errors.internal(`not a sha256: ${sha256}`);
    return this.bucket.key(`${blobFolder}${sha256}`);
  }

  async exists(sha256: string): Promise<boolean> {
    return this.bucket.exists(this.blobKey(sha256));
  }

  /** The object's bytes as S3 holds them; the reader (the worker's blob cache) verifies them against the name. */
  async read(sha256: string): Promise<Readable> {
    const body = await this.bucket.getStream(this.blobKey(sha256));
    if (body === undefined) throw errors.blobNotInStore(sha256, this.describeLocation());
    return body;
  }

  /** Only the garbage collection (blob-collector.ts) calls it; workers' local copies are their cache's to evict. */
  async remove(sha256: string): Promise<void> {
    await this.bucket.delete(this.blobKey(sha256));
  }

  async listBlobs(): Promise<StoredBlob[]> {
    const blobs: StoredBlob[] = [];
    for (const object of await this.bucket.list(blobFolder)) {
      const sha256 = this.bucket.relative(object.key).slice(blobFolder.length);
      if (sha256Pattern.test(sha256)) blobs.push({ sha256, size: object.size });
    }
    return blobs;
  }

  async blobsNamedByRecords(): Promise<Set<string>> {
    return s3BlobsNamedByRecords(this.bucket);
  }

  async warmupSamplesNamedByRecords(): Promise<Set<string>> {
    return s3WarmupSamplesNamedByRecords(this.bucket);
  }
}

/** The error a pipeline reports when its last stream was destroyed without an error of its own (its reader stopped). */
function isStreamCutShort(error: unknown): boolean {
  const { name, code } = error as { name?: string; code?: string };
  return name === 'AbortError' || code === 'ERR_STREAM_PREMATURE_CLOSE';
}

/**
 * Whether a temporary belongs to an upload that died: both the time in its name and the time the server reports
 * are older than `cutoff`. Either alone can mislead: a name made on a machine whose clock is wrong, or a server
 * that reports no real time (moto gives every multipart upload the same date in 2010).
 */
function isStale(key: string, serverTime: number, cutoff: number): boolean {
  const named = uploadKeyPattern.exec(key)?.[1];
  // A key that is not one of ours under uploads/ was not written by an upload; the server's time alone decides.
  const namedTime = named === undefined ? 0 : Number(named);
  return namedTime < cutoff && serverTime < cutoff;
}
