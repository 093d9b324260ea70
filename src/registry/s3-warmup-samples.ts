import type { WarmupSampleFiles } from './model-store.js';
import type { S3Bucket } from './s3-bucket.js';

const sampleKeyPattern = /(?:^|\/)([0-9a-f]{64})\.json$/;
const folder = 'warmup-samples/';

/**
 * Warm-up samples as objects `<prefix>/warmup-samples/<sha256>.json` (the S3 store's), the same layout as the file
 * store's folder. S3 has no "touch": storing a sample again writes it again, which gives it a new LastModified, the
 * time `list` reports, so a collection pass spares a sample that was just stored again.
 */
export class S3WarmupSamples implements WarmupSampleFiles {
  constructor(private readonly bucket: S3Bucket) {}

  async put(sha256: string, text: string): Promise<void> {
    await this.bucket.putText(this.keyOf(sha256), text);
  }

  async get(sha256: string): Promise<string | undefined> {
    return this.bucket.getText(this.keyOf(sha256));
  }

  async list(): Promise<Array<{ sha256: string; storedAt: number }>> {
    const samples: Array<{ sha256: string; storedAt: number }> = [];
    for (const object of await this.bucket.list(folder)) {
      const sha256 = sampleKeyPattern.exec(object.key)?.[1];
      if (sha256 !== undefined) samples.push({ sha256, storedAt: object.lastModified });
    }
    return samples;
  }

  async remove(sha256: string): Promise<void> {
    await this.bucket.delete(this.keyOf(sha256));
  }

  private keyOf(sha256: string): string {
    return this.bucket.key(`${folder}${sha256}.json`);
  }
}
