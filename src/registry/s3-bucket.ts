import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { ErrorCode, GantryError } from '../errors.js';

/** Where the S3 store lives and how to reach it (GANTRY_S3_* in config.ts; credentials from the AWS chain). */
export interface S3Location {
  bucket: string;
  /** Key prefix inside the bucket ('' = the bucket's root); one bucket can hold several stores under prefixes. */
  prefix: string;
  /** An S3-compatible server (MinIO, Ceph, moto); undefined = AWS itself, from the region. */
  endpoint?: string;
  region: string;
  /** `http://endpoint/bucket/key` instead of `http://bucket.endpoint/key`: what most S3-compatible servers need. */
  forcePathStyle: boolean;
  /** Explicit credentials (tests); undefined = the SDK's default chain (AWS_ACCESS_KEY_ID…, AWS_PROFILE, a role). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** One object listed under a prefix. */
export interface ListedObject {
  key: string;
  size: number;
  lastModified: number;
}

/**
 * The bucket as the S3 store sees it: one client, keys under the store's prefix, and the few calls the store,
 * the registry records and the warm-up samples share (so "absent" is decided in one place). Thin on purpose: the
 * layout of keys belongs to the classes that use them.
 */
// The SDK warns, once per process, that versions published after January 2027 need Node 22. The version Gantry pins
// runs on Node 20 (README: Node 20+); an operator upgrading the SDK reads its requirements there, not in every log.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export class S3Bucket {
  readonly client: S3Client;
  readonly name: string;
  /** The store's prefix with a trailing '/', or '' for the bucket's root. */
  private readonly keyPrefix: string;

  constructor(readonly location: S3Location) {
    this.name = location.bucket;
    const prefix = location.prefix.replace(/^\/+|\/+$/g, '');
    this.keyPrefix = prefix === '' ? '' : `${prefix}/`;
    const config: S3ClientConfig = {
      region: location.region,
      forcePathStyle: location.forcePathStyle,
      // A connection that cannot be made in 10 s will not be made; a socket idle for 2 min is dead (a part is 8 MiB).
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
      maxAttempts: 3,
      // Gantry checks every blob against its sha256 itself (the worker's blob cache). The SDK's own check of a
      // download's CRC32 fails on objects the store made by copying a multipart upload (their checksum is of the
      // parts: seen with moto), so it is asked for only where an operation requires it.
      responseChecksumValidation: 'WHEN_REQUIRED',
    };
    if (location.endpoint !== undefined) config.endpoint = location.endpoint;
    if (location.credentials !== undefined) config.credentials = location.credentials;
    this.client = new S3Client(config);
  }

  /** `s3://bucket/prefix (endpoint)`: for messages to operators, never a credential. */
  describe(): string {
    const where = this.location.endpoint ?? `AWS region ${this.location.region}`;
    return `s3://${this.name}/${this.keyPrefix} (${where})`;
  }

  /** The full key of a path inside the store (`blobs/sha256/…`). */
  key(relative: string): string {
    return `${this.keyPrefix}${relative}`;
  }

  /** The path inside the store of a full key (the inverse of `key`). */
  relative(key: string): string {
    return key.startsWith(this.keyPrefix) ? key.slice(this.keyPrefix.length) : key;
  }

  /** Every object under a relative prefix, with pagination (S3 returns at most 1000 a call). */
  async list(relativePrefix: string): Promise<ListedObject[]> {
    const objects: ListedObject[] = [];
    let continuationToken: string | undefined;
    do {
      const page = await this.client
        .send(
          new ListObjectsV2Command({
            Bucket: this.name,
            Prefix: this.key(relativePrefix),
            ...(continuationToken === undefined ? {} : { ContinuationToken: continuationToken }),
          }),
        )
        .catch((error: unknown) => {
          throw this.unavailable(`listing ${relativePrefix}`, error);
        });
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        objects.push({ key: object.Key, size: object.Size ?? 0, lastModified: object.LastModified?.getTime() ?? 0 });
      }
      continuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (continuationToken !== undefined);
    return objects;
  }

  /** An object's text, or undefined when there is no such object. */
  async getText(key: string): Promise<string | undefined> {
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.name, Key: key }));
      return (await response.Body?.transformToString('utf8')) ?? '';
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.unavailable(`reading ${this.relative(key)}`, error);
    }
  }

  /** An object's bytes as a stream, or undefined when there is no such object. */
  async getStream(key: string): Promise<Readable | undefined> {
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.name, Key: key }));
      return response.Body as Readable;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.unavailable(`reading ${this.relative(key)}`, error);
    }
  }

  /** Writes a small object whole (S3 makes a PutObject visible all at once, or not at all). */
  async putText(key: string, text: string): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.name, Key: key, Body: text, ContentType: 'application/json' })).catch((error: unknown) => {
      throw this.unavailable(`writing ${this.relative(key)}`, error);
    });
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.name, Key: key }));
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw this.unavailable(`looking for ${this.relative(key)}`, error);
    }
  }

  /** Deletes an object; deleting one that is not there is not an error (S3 answers 204 either way). */
  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.name, Key: key })).catch((error: unknown) => {
      throw this.unavailable(`deleting ${this.relative(key)}`, error);
    });
  }

  /**
   * An S3 failure as a 503 with Retry-After (a 500 would say Gantry is broken): the bucket unreachable, overloaded
   * or refusing for a while. Errors Gantry decided (a GantryError) pass through as they are.
   */
  unavailable(during: string, error: unknown): Error {
    if (error instanceof GantryError) return error;
    const { name = 'Error', message = String(error) } = error as { name?: string; message?: string };
    return new GantryError(
      ErrorCode.Unavailable,
      `The model store (${this.describe()}) failed ${during} (${name}: ${message}); retry shortly. If it lasts, check that the bucket is reachable and the credentials still valid (GANTRY_S3_*, AWS_*).`,
      { retryAfterSeconds: 5, cause: error },
    );
  }

  /**
   * Checks that the bucket exists and the credentials may use it, so start-up fails with a sentence an operator
   * can act on instead of the first upload failing with an SDK error.
   * @throws Error naming the bucket, the endpoint and what to fix; never the secret key.
   */
  async checkAccess(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.name }));
    } catch (error) {
      throw new Error(await this.accessProblem(error), { cause: error });
    }
  }

  private async accessProblem(error: unknown): Promise<string> {
    const where = `the S3 bucket "${this.name}" at ${this.location.endpoint ?? `AWS region ${this.location.region}`}`;
    const status = httpStatusOf(error);
    const name = (error as { name?: string }).name ?? '';
    if (name === 'CredentialsProviderError') {
      return `No AWS credentials were found to reach ${where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or give the machine a role).`;
    }
    if (status === 404 || name === 'NoSuchBucket' || name === 'NotFound') {
      return `${capitalized(where)} does not exist: create it, or set GANTRY_S3_BUCKET to an existing bucket (and GANTRY_S3_ENDPOINT / GANTRY_S3_REGION to where it is).`;
    }
    if (status === 403 || status === 401) {
      const keyId = await this.accessKeyId();
      return (
        `${capitalized(where)} refused the credentials${keyId === undefined ? '' : ` of access key ${keyId}`} (HTTP ${status}): check AWS_ACCESS_KEY_ID and ` +
        'AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and that they may list, read, write and delete objects in that bucket.'
      );
    }
    if (status === 301 || name === 'PermanentRedirect') {
      return `${capitalized(where)} is in another region: set GANTRY_S3_REGION to the bucket's region (or GANTRY_S3_ENDPOINT to its endpoint).`;
    }
    if (status === undefined) {
      const reason = (error as { code?: string }).code ?? (error as Error).message;
      return `Could not reach ${where} (${reason}): check GANTRY_S3_ENDPOINT (scheme, host and port) and that the server is up and reachable from this machine.`;
    }
    return `${capitalized(where)} answered HTTP ${status} (${name}) to a HeadBucket: check GANTRY_S3_BUCKET, GANTRY_S3_ENDPOINT and the credentials.`;
  }

  /** The access key id the client signs with (not secret: it names the key), or undefined when none resolves. */
  private async accessKeyId(): Promise<string | undefined> {
    try {
      return (await this.client.config.credentials()).accessKeyId;
    } catch {
      return undefined;
    }
  }
}

/** The HTTP status S3 answered, or undefined when no answer came (a network error). */
export function httpStatusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** True when S3 said "no such object" (GetObject names it NoSuchKey; HeadObject has no body, so only 404). */
export function isNotFound(error: unknown): boolean {
  const name = (error as { name?: string }).name;
  return name === 'NoSuchKey' || name === 'NotFound' || httpStatusOf(error) === 404;
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
