/**
 * A real S3-compatible server for tests and benchmarks: moto's server (python3 -m moto, installed on the machine)
 * on a free port, in a process of its own. moto rather than s3rver: it implements conditional writes
 * (`If-None-Match: *`, which the registry's deployment claim relies on), ListMultipartUploads / ListParts /
 * UploadPartCopy, the SDK's default CRC32 checksums, and, when asked, real signature checks against IAM users
 * (s3rver 3 is unmaintained since 2021 and has none of the first three). Its known gaps: every multipart upload
 * reports the same initiation date (2010), and with signature checks on, a query string holding '/' (a listing
 * prefix) fails to verify, so tests that list use a server without checks (see docs/decisions.md).
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { freePort } from '../src/runtime/free-port.js';

export interface S3Server {
  endpoint: string;
  region: string;
  /** With `checkCredentials`, the only key the server accepts; otherwise any key is accepted and these are placeholders. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Creates a bucket with the server's credentials. */
  createBucket: (name: string) => Promise<void>;
  stop: () => Promise<void>;
}

export interface S3ServerOptions {
  /** Refuse requests not signed with the returned credentials (moto's IAM checks), for wrong-credential tests. */
  checkCredentials?: boolean;
}

/**
 * Starts moto with an IAM user allowed everything on S3 (its key is printed as JSON), turns signature checks on
 * when asked, and waits until the port accepts connections. stdin closing (the parent going) stops it.
 */
const launcher = String.raw`
import json, os, socket, sys, time
from moto import settings
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends
from moto.server import ThreadedMotoServer

port = int(sys.argv[1])
check_credentials = sys.argv[2] == "check"
credentials = {"accessKeyId": "AKIAGANTRYTESTKEY000", "secretAccessKey": "gantry-test-secret"}
if check_credentials:
    iam = iam_backends[DEFAULT_ACCOUNT_ID]["global"]
    iam.create_user(region_name="us-east-1", user_name="gantry-test", path="/", tags=[])
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy("gantry-test", "s3-all", json.dumps(policy))
    key = iam.create_access_key("gantry-test")
    credentials = {"accessKeyId": key.access_key_id, "secretAccessKey": key.secret_access_key}
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
deadline = time.time() + 20
while True:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
    except OSError:
        if time.time() > deadline:
            raise
        time.sleep(0.05)
print(json.dumps(credentials), flush=True)
sys.stdin.read()
server.stop()
`;

/**
 * The environment a gantry process needs to use `bucket` on this server as its model store (GANTRY_MODEL_STORE=s3,
 * path-style, the server's credentials as the AWS SDK reads them); `credentials` replaces them (a refused key).
 */
export function gantryS3Environment(
  server: S3Server,
  bucket: string,
  options: { prefix?: string; credentials?: S3Server['credentials'] } = {},
): Record<string, string> {
  const credentials = options.credentials ?? server.credentials;
  return {
    GANTRY_MODEL_STORE: 's3',
    GANTRY_S3_BUCKET: bucket,
    ...(options.prefix === undefined ? {} : { GANTRY_S3_PREFIX: options.prefix }),
    GANTRY_S3_ENDPOINT: server.endpoint,
    GANTRY_S3_REGION: server.region,
    GANTRY_S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
  };
}

/** Starts a private moto S3 server; resolves once it answers. */
export async function startS3Server(options: S3ServerOptions = {}): Promise<S3Server> {
  const port = await freePort();
  const child: ChildProcess = spawn('python3', ['-c', launcher, String(port), options.checkCredentials === true ? 'check' : 'open'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000);
  });
  const credentials = await new Promise<S3Server['credentials']>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`moto did not start on port ${port} within 30 s: ${stderr}`)), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`moto exited (${code}) before answering on port ${port}; is moto installed for python3 (pip install 'moto[server]')? ${stderr}`));
    });
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolve(JSON.parse(line) as S3Server['credentials']);
    });
  });
  child.removeAllListeners('exit');
  const endpoint = `http://127.0.0.1:${port}`;
  const region = 'us-east-1';
  const exited = () =>
    child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    endpoint,
    region,
    credentials,
    createBucket: async (name) => {
      const client = new S3Client({ endpoint, region, forcePathStyle: true, credentials });
      try {
        await client.send(new CreateBucketCommand({ Bucket: name }));
      } finally {
        client.destroy();
      }
    },
    stop: async () => {
      child.stdin!.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited();
      clearTimeout(timer);
    },
  };
}
