import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { errors } from '../errors.js';
import type { StoredBlob } from './model-store.js';

/** How an upload's room in a store is measured and checked (file-model-store.ts, s3-model-store.ts). */
export interface UploadRoom<Measurement> {
  /** Measures the room now (the store's bytes, its disk's free space). */
  measure(): Promise<Measurement>;
  /**
   * Refuses (throws the 507) when `bytes` of this upload would not fit in the room measured.
   * @param finalSizeKnown whether `bytes` is the whole upload's size (the Content-Length) or what arrived so far.
   */
  check(room: Measurement, bytes: number, finalSizeKnown: boolean): void;
  /** Bytes between two measurements: other uploads (of any process) go on at the same time. */
  remeasureEveryBytes: number;
}

/**
 * The stream an upload passes through on its way into a store: it counts and hashes the bytes (the blob's name is
 * the sha256 of its content, known once the stream ends), refuses them past `maxBytes` (413), and, when the store has
 * a room to keep (`room`), checks it against the room on every chunk and measures the room again every
 * `remeasureEveryBytes`.
 */
export class UploadMeter<Measurement> extends Transform {
  private readonly hash = createHash('sha256');
  private bytes = 0;
  private measured: Measurement | undefined;
  private nextMeasureAt: number;

  constructor(
    private readonly maxBytes: number,
    private readonly expectedBytes: number | undefined,
    private readonly room?: UploadRoom<Measurement>,
  ) {
    super();
    this.nextMeasureAt = room?.remeasureEveryBytes ?? Number.POSITIVE_INFINITY;
  }

  /** Measures the room and refuses an upload whose Content-Length cannot fit, before a byte of it is written. */
  async checkBeforeStart(): Promise<void> {
    if (this.room === undefined) return;
    this.measured = await this.room.measure();
    this.room.check(this.measured, this.expectedBytes ?? 0, this.expectedBytes !== undefined);
  }

  /** The blob the bytes make; valid once the stream ended. */
  blob(): StoredBlob {
    return { sha256: this.hash.digest('hex'), size: this.bytes };
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.byteLength;
    if (this.bytes > this.maxBytes) {
      callback(errors.uploadTooLarge(this.maxBytes));
      return;
    }
    this.hash.update(chunk);
    if (this.room === undefined || this.measured === undefined) {
      callback(null, chunk);
      return;
    }
    try {
      this.room.check(this.measured, Math.max(this.bytes, this.expectedBytes ?? 0), false);
    } catch (error) {
      callback(error as Error);
      return;
    }
    if (this.bytes < this.nextMeasureAt) {
      callback(null, chunk);
      return;
    }
    this.nextMeasureAt = this.bytes + this.room.remeasureEveryBytes;
    this.room.measure().then(
      (measured) => {
        this.measured = measured;
        callback(null, chunk);
      },
      (error: unknown) => callback(error as Error),
    );
  }
}

/** The Content-Length an upload declared, when it is a usable byte count. */
export function declaredBytes(expectedBytes: number | undefined): number | undefined {
  return expectedBytes !== undefined && Number.isSafeInteger(expectedBytes) && expectedBytes >= 0 ? expectedBytes : undefined;
}
