/**
 * Validates docker-compose.yml with the real docker-compose (config only: no Docker engine runs on the
 * development machine or in CI). Skips when docker-compose is not installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseYaml } from './yaml.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'docker-compose.yml')) || !existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('docker-compose.yml not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

const root = repoRoot();
const envDirectory = mkdtempSync(join(tmpdir(), 'gantry-compose-'));
const emptyEnvFile = join(envDirectory, 'empty.env');
writeFileSync(emptyEnvFile, '');
/** The two secrets compose requires, and nothing else. */
const testAdminKey = 'compose-test-admin-key-0123456789';
const testRedisPassword = 'composetestredispassword0123';
const secretsEnvFile = join(envDirectory, 'secrets.env');
writeFileSync(secretsEnvFile, `GANTRY_ADMIN_KEY=${testAdminKey}\nREDIS_PASSWORD=${testRedisPassword}\n`);

/** With docker-compose.s3.yml, MinIO's administrator and Gantry's own S3 key are required as well. */
const testMinioRootUser = 'compose-test-minio-root';
const testMinioRootPassword = 'composetestminiopassword0123';
const testS3AccessKeyId = 'compose-test-gantry-s3';
const testS3SecretAccessKey = 'composetests3secret0123';
const S3_SECRETS: Record<string, string> = {
  MINIO_ROOT_USER: testMinioRootUser,
  MINIO_ROOT_PASSWORD: testMinioRootPassword,
  S3_ACCESS_KEY_ID: testS3AccessKeyId,
  S3_SECRET_ACCESS_KEY: testS3SecretAccessKey,
};
const s3SecretsEnvFile = join(envDirectory, 's3-secrets.env');
writeFileSync(
  s3SecretsEnvFile,
  `GANTRY_ADMIN_KEY=${testAdminKey}\nREDIS_PASSWORD=${testRedisPassword}\n` +
    Object.entries(S3_SECRETS)
      .map(([name, value]) => `${name}=${value}\n`)
      .join(''),
);

/** .env.example's text with its empty MinIO and S3 secrets filled in. */
function fillS3Secrets(example: string): string {
  let text = example;
  for (const [name, value] of Object.entries(S3_SECRETS)) text = text.replace(new RegExp(`^${name}=$`, 'm'), `${name}=${value}`);
  return text;
}

/** Only PATH and HOME: a developer's GANTRY_* or *_PORT variables must not change what the test sees. */
const cleanEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' };

const haveCompose = spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0;
const skip = haveCompose ? false : 'docker-compose is not installed (apt-get install docker-compose)';

/** The base file alone; with the S3 override, the files `docker compose -f … -f docker-compose.s3.yml` reads. */
const BASE_FILES = ['docker-compose.yml'];
const S3_FILES = ['docker-compose.yml', 'docker-compose.s3.yml'];

function runCompose(args: string[], envFile: string, files = BASE_FILES) {
  const fileArgs = files.flatMap((file) => ['-f', file]);
  return spawnSync('docker-compose', ['--env-file', envFile, ...fileArgs, ...args], { cwd: root, encoding: 'utf8', env: cleanEnv });
}

function compose(args: string[], envFile = secretsEnvFile, files = BASE_FILES): string {
  const result = runCompose(args, envFile, files);
  assert.equal(result.status, 0, `docker-compose ${args.join(' ')} failed:\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

const EXPECTED_SERVICES = ['api', 'grafana', 'prometheus', 'redis', 'worker', 'worker-gpu'];

function portHostIp(port: Doc): string | undefined {
  if (typeof port === 'object' && port !== null) return port.host_ip;
  const text = String(port);
  // "127.0.0.1:8080:8080/tcp" → host ip; "8080:8080" or "8080" → none
  const parts = text.replace(/\/(tcp|udp|sctp)$/, '').split(':');
  return parts.length === 3 ? parts[0] : undefined;
}

function envOf(service: Doc): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((entry: string) => [entry.split('=')[0], entry.split('=').slice(1).join('=')]));
  }
  return env as Record<string, string>;
}

function volumeTargets(service: Doc): Array<{ source: string; target: string }> {
  return (service.volumes ?? []).map((v: Doc) => {
    if (typeof v === 'string') {
      // "/data" alone is an anonymous volume: a target without a source.
      if (!v.includes(':')) return { source: '', target: v };
      const [source = '', target = ''] = v.split(':');
      return { source, target };
    }
    return { source: v.source === undefined ? '' : String(v.source), target: String(v.target) };
  });
}

test('docker-compose config succeeds and describes the whole stack', { skip }, async () => {
  const config = await parseYaml(compose(['config']));
  const services = config.services as Record<string, Doc>;
  assert.deepEqual(Object.keys(services).sort(), EXPECTED_SERVICES);

  // worker-gpu is the only profiled service, and only under "gpu".
  for (const [name, service] of Object.entries(services)) {
    if (name === 'worker-gpu') assert.deepEqual(service.profiles, ['gpu']);
    else assert.equal(service.profiles, undefined, `${name} must start without a profile`);
  }

  // Every published port is bound to loopback.
  let published = 0;
  for (const [name, service] of Object.entries(services)) {
    for (const port of service.ports ?? []) {
      published += 1;
      assert.equal(portHostIp(port), '127.0.0.1', `${name} publishes ${JSON.stringify(port)} beyond 127.0.0.1`);
    }
  }
  assert.ok(published >= 3, 'api, prometheus and grafana publish ports');

  // Redis: durable and never evicting BullMQ keys.
  const redisCommand = [services.redis.command].flat().join(' ');
  assert.match(redisCommand, /--appendonly\s+yes/);
  assert.match(redisCommand, /--maxmemory-policy\s+noeviction/);
  assert.ok(services.redis.healthcheck, 'redis has a healthcheck');
  assert.match(JSON.stringify(services.redis.healthcheck.test), /redis-cli.*ping/);
  assert.ok(
    volumeTargets(services.redis).some((v) => v.target === '/data'),
    'redis keeps its AOF on a volume',
  );

  // The three roles of the one image.
  assert.deepEqual([services.api.command].flat(), ['node', 'dist/src/cli.js', 'api']);
  assert.deepEqual([services.worker.command].flat(), ['node', 'dist/src/cli.js', 'worker']);
  assert.deepEqual([services['worker-gpu'].command].flat(), ['node', 'dist/src/cli.js', 'worker']);
  assert.equal(services.api.build.dockerfile, 'Dockerfile');
  assert.equal(services.worker.build.dockerfile, 'Dockerfile');
  assert.equal(services['worker-gpu'].build.dockerfile, 'Dockerfile.cuda');

  // api and every worker share the model store volume at /data and reach the same Redis.
  assert.ok(config.volumes && 'models' in config.volumes, 'named volume "models" is declared');
  for (const name of ['api', 'worker', 'worker-gpu']) {
    const service = services[name];
    assert.ok(
      volumeTargets(service).some((v) => v.source === 'models' && v.target === '/data'),
      `${name} mounts the models volume at /data`,
    );
    const env = envOf(service);
    assert.equal(env.GANTRY_DATA_DIR, '/data', `${name} GANTRY_DATA_DIR`);
    assert.equal(env.REDIS_URL, `redis://:${testRedisPassword}@redis:6379`, `${name} REDIS_URL carries the Redis password`);
    assert.equal(env.HOST, '0.0.0.0', `${name} listens on all interfaces inside its container`);
    assert.equal(env.GANTRY_WORKER_METRICS_PORT, '9091', `${name} GANTRY_WORKER_METRICS_PORT`);
    assert.equal(service.depends_on?.redis?.condition, 'service_healthy', `${name} waits for a healthy redis`);
    assert.ok(service.healthcheck?.test, `${name} has a healthcheck`);
  }
  assert.match(JSON.stringify(services.api.healthcheck.test), /\/v2\/health\/live/);

  // Secrets: the admin key reaches the api only; Redis requires its password, given on stdin (not in argv), and
  // its healthcheck authenticates.
  assert.equal(envOf(services.api).GANTRY_ADMIN_KEY, testAdminKey);
  for (const name of ['worker', 'worker-gpu']) assert.equal(envOf(services[name]).GANTRY_ADMIN_KEY, undefined, `${name} gets no admin key`);
  assert.equal(envOf(services.redis).REDIS_PASSWORD, testRedisPassword);
  assert.match(redisCommand, /requirepass %s.*\| exec redis-server - /);
  assert.ok(!redisCommand.includes(testRedisPassword), 'the Redis password is not on its command line');
  assert.match(JSON.stringify(services.redis.healthcheck.test), /REDISCLI_AUTH=.*redis-cli ping \| grep -q PONG/);
  assert.match(JSON.stringify(services.worker.healthcheck.test), /9091\/health/);
  assert.equal(envOf(services['worker-gpu']).GANTRY_DEVICE, 'cuda');
  assert.equal(envOf(services.worker).GANTRY_DEVICE, 'cpu');

  // Workers scale with --scale worker=N: no fixed name, no host port.
  for (const name of ['worker', 'worker-gpu']) {
    assert.equal(services[name].container_name, undefined, `${name} has no container_name`);
    assert.equal(services[name].ports, undefined, `${name} publishes no host port`);
  }

  // GPU reservation.
  const devices = services['worker-gpu'].deploy?.resources?.reservations?.devices as Doc[] | undefined;
  assert.ok(devices && devices.length === 1, 'worker-gpu reserves devices');
  assert.equal(devices[0].driver, 'nvidia');
  assert.equal(String(devices[0].count), 'all');
  assert.deepEqual(devices[0].capabilities, ['gpu']);

  // Monitoring.
  assert.ok(
    volumeTargets(services.prometheus).some((v) => v.source.endsWith('/deploy/prometheus') && v.target === '/etc/prometheus'),
    'prometheus mounts deploy/prometheus',
  );
  assert.ok([services.prometheus.command].flat().includes('--config.file=/etc/prometheus/prometheus.yml'), 'prometheus reads deploy/prometheus/prometheus.yml');
  const grafanaEnv = envOf(services.grafana);
  assert.equal(String(grafanaEnv.GF_AUTH_ANONYMOUS_ENABLED), 'true');
  assert.equal(grafanaEnv.GF_AUTH_ANONYMOUS_ORG_ROLE, 'Viewer');
  assert.ok(
    volumeTargets(services.grafana).some((v) => v.source.endsWith('/deploy/grafana/provisioning') && v.target === '/etc/grafana/provisioning'),
    'grafana mounts deploy/grafana/provisioning',
  );
  const providers = readFileSync(join(root, 'deploy/grafana/provisioning/dashboards/gantry.yml'), 'utf8');
  const providerPath = /path:\s*(\S+)/.exec(providers)?.[1];
  assert.ok(
    volumeTargets(services.grafana).some((v) => v.source.endsWith('/deploy/grafana/dashboards') && v.target === providerPath),
    `grafana mounts deploy/grafana/dashboards where the provider looks (${providerPath})`,
  );

  // The published ports of the three web UIs.
  const hostPorts = Object.fromEntries(['api', 'prometheus', 'grafana'].map((name) => [name, String(services[name].ports[0])]));
  assert.match(hostPorts.api ?? '', /^127\.0\.0\.1:8080:8080/);
  assert.match(hostPorts.prometheus ?? '', /^127\.0\.0\.1:9090:9090/);
  assert.match(hostPorts.grafana ?? '', /^127\.0\.0\.1:3000:3000/);
});

test('docker-compose refuses to start without GANTRY_ADMIN_KEY or REDIS_PASSWORD, naming the one missing', { skip }, () => {
  for (const [missing, present] of [
    ['GANTRY_ADMIN_KEY', `REDIS_PASSWORD=${testRedisPassword}`],
    ['REDIS_PASSWORD', `GANTRY_ADMIN_KEY=${testAdminKey}`],
  ] as const) {
    const envFile = join(envDirectory, `without-${missing}.env`);
    writeFileSync(envFile, `${present}\n`);
    const result = runCompose(['config', '--quiet'], envFile);
    assert.notEqual(result.status, 0, `compose accepted a stack without ${missing}`);
    assert.match(result.stderr + result.stdout, new RegExp(`set ${missing} in \\.env`));
  }
  assert.notEqual(runCompose(['config', '--quiet'], emptyEnvFile).status, 0);
});

test('docker-compose --profile gpu config succeeds and lists worker-gpu', { skip }, () => {
  compose(['--profile', 'gpu', 'config', '--quiet']);
  const services = compose(['--profile', 'gpu', 'config', '--services']).trim().split('\n').sort();
  assert.deepEqual(services, EXPECTED_SERVICES);
  const volumes = compose(['config', '--volumes']).trim().split('\n').sort();
  assert.ok(volumes.includes('models'), `volumes: ${volumes.join(', ')}`);
  assert.ok(volumes.includes('redis-data'), `volumes: ${volumes.join(', ')}`);
});

/** The variables a compose file interpolates (`${NAME…}`; `$${NAME}` is the container's shell's, not compose's). */
function variablesReadBy(file: string): Set<string> {
  const text = readFileSync(join(root, file), 'utf8');
  return new Set([...text.matchAll(/(?<!\$)\$\{([A-Z0-9_]+)/g)].map((m) => m[1] as string));
}

test('.env.example lists every variable docker-compose.yml and docker-compose.s3.yml read, and works as an .env file', { skip }, async () => {
  const example = readFileSync(join(root, '.env.example'), 'utf8');
  const base = variablesReadBy('docker-compose.yml');
  const s3 = variablesReadBy('docker-compose.s3.yml');
  assert.ok(base.size > 5);
  assert.ok(s3.has('MINIO_ROOT_PASSWORD') && s3.has('S3_SECRET_ACCESS_KEY'), `docker-compose.s3.yml reads ${[...s3].join(', ')}`);
  const referenced = new Set([...base, ...s3]);
  const listed = new Set([...example.matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1] as string));
  for (const name of referenced) assert.ok(listed.has(name), `.env.example lacks ${name}`);
  for (const name of listed) assert.ok(referenced.has(name), `.env.example lists ${name}, which neither compose file reads`);
  // Every line is a comment, blank, or NAME=value.
  for (const line of example.split('\n')) assert.match(line, /^(#.*|\s*|[A-Z0-9_]+=.*)$/, `bad line: ${line}`);

  // As it is, .env.example has empty secrets, and compose refuses it; with them filled in, it is a working .env.
  assert.notEqual(runCompose(['config', '--quiet'], join(root, '.env.example')).status, 0, 'compose accepts .env.example with empty secrets');
  const filled = join(envDirectory, 'filled.env');
  writeFileSync(
    filled,
    example.replace(/^GANTRY_ADMIN_KEY=$/m, `GANTRY_ADMIN_KEY=${testAdminKey}`).replace(/^REDIS_PASSWORD=$/m, `REDIS_PASSWORD=${testRedisPassword}`),
  );
  const config = await parseYaml(compose(['config'], filled));
  assert.match(String(config.services.api.ports[0]), /^127\.0\.0\.1:8080:8080/);
  assert.match(String(config.services.api.ports[1]), /^127\.0\.0\.1:8081:8081/, 'the api publishes its gRPC port on loopback');
  assert.equal(envOf(config.services.api).GANTRY_GRPC_PORT, '8081');
  assert.equal(envOf(config.services.worker).REDIS_URL, `redis://:${testRedisPassword}@redis:6379`);
  assert.equal(envOf(config.services.api).GANTRY_ADMIN_KEY, testAdminKey);

  // With the S3 override, .env.example's empty MinIO and S3 secrets are refused; filled in, it points at MinIO.
  assert.notEqual(runCompose(['config', '--quiet'], filled, S3_FILES).status, 0, 'the S3 stack accepts .env.example with empty MinIO secrets');
  const filledS3 = join(envDirectory, 'filled-s3.env');
  writeFileSync(filledS3, fillS3Secrets(readFileSync(filled, 'utf8')));
  const s3Config = await parseYaml(compose(['config'], filledS3, S3_FILES));
  assert.equal(envOf(s3Config.services.worker).GANTRY_S3_ENDPOINT, 'http://minio:9000');
  assert.equal(envOf(s3Config.services.worker).GANTRY_S3_BUCKET, 'gantry-models');
  assert.equal(envOf(s3Config.services.worker).AWS_ACCESS_KEY_ID, testS3AccessKeyId);
});

const GANTRY_SERVICES = ['api', 'worker', 'worker-gpu'];

test('docker-compose.s3.yml: MinIO and its setup, the gantry services on S3 with no shared volume', { skip }, async () => {
  const base = await parseYaml(compose(['config']));
  const config = await parseYaml(compose(['config'], s3SecretsEnvFile, S3_FILES));
  const services = config.services as Record<string, Doc>;
  assert.deepEqual(Object.keys(services).sort(), [...EXPECTED_SERVICES, 'minio', 'minio-setup'].sort());

  // The override leaves Redis and the monitoring services as the base file has them.
  // (Merging files reorders volume lists, which means nothing: compared sorted.)
  const withSortedVolumes = (service: Doc) => ({ ...service, volumes: [...(service.volumes ?? [])].map(String).sort() });
  for (const name of ['redis', 'prometheus', 'grafana']) {
    assert.deepEqual(withSortedVolumes(services[name]), withSortedVolumes(base.services[name]), `${name} is unchanged`);
  }

  for (const name of GANTRY_SERVICES) {
    const service = services[name];
    const env = envOf(service);
    assert.equal(env.GANTRY_MODEL_STORE, 's3', `${name} GANTRY_MODEL_STORE`);
    assert.equal(env.GANTRY_S3_BUCKET, 'gantry-models', `${name} GANTRY_S3_BUCKET`);
    assert.equal(env.GANTRY_S3_ENDPOINT, 'http://minio:9000', `${name} reaches the bundled MinIO`);
    assert.equal(String(env.GANTRY_S3_FORCE_PATH_STYLE), 'true', `${name} uses path-style URLs (MinIO)`);
    assert.equal(env.GANTRY_S3_REGION, 'us-east-1');
    // Gantry's own key, never MinIO's administrator.
    assert.equal(env.AWS_ACCESS_KEY_ID, testS3AccessKeyId, `${name} AWS_ACCESS_KEY_ID`);
    assert.equal(env.AWS_SECRET_ACCESS_KEY, testS3SecretAccessKey, `${name} AWS_SECRET_ACCESS_KEY`);
    assert.ok(!Object.values(env).includes(testMinioRootPassword), `${name} gets MinIO's root password`);
    // The base file's settings are kept (the override merges environments).
    assert.equal(env.GANTRY_DATA_DIR, '/data');
    assert.equal(env.REDIS_URL, `redis://:${testRedisPassword}@redis:6379`);

    // The point of the override: no shared volume. /data is the container's own anonymous volume.
    const volumes = volumeTargets(service);
    assert.ok(!volumes.some((v) => v.source === 'models'), `${name} still mounts the shared models volume: ${JSON.stringify(service.volumes)}`);
    const data = volumes.filter((v) => v.target === '/data');
    assert.equal(data.length, 1, `${name} has one /data: ${JSON.stringify(service.volumes)}`);
    assert.equal(data[0]?.source, '', `${name}: /data is an anonymous volume, not ${data[0]?.source}`);

    assert.equal(service.depends_on?.['minio-setup']?.condition, 'service_completed_successfully', `${name} waits for the bucket`);
    assert.equal(service.depends_on?.redis?.condition, 'service_healthy', `${name} still waits for Redis`);
  }
  assert.equal(envOf(services.api).GANTRY_ADMIN_KEY, testAdminKey);
  assert.equal(envOf(services.worker).GANTRY_ADMIN_KEY, undefined, 'the worker gets no admin key');

  const minio = services.minio;
  assert.match(minio.image, /^minio\/minio:RELEASE\.\d{4}-\d{2}-\d{2}T/, 'minio is pinned to a release');
  assert.deepEqual([minio.command].flat().join(' ').split(/\s+/), ['server', '/data', '--console-address', ':9001']);
  assert.equal(envOf(minio).MINIO_ROOT_USER, testMinioRootUser);
  assert.equal(envOf(minio).MINIO_ROOT_PASSWORD, testMinioRootPassword);
  assert.ok(minio.ports.length >= 1);
  for (const port of minio.ports) assert.equal(portHostIp(port), '127.0.0.1', `minio publishes ${JSON.stringify(port)} beyond 127.0.0.1`);
  assert.ok(minio.healthcheck?.test, 'minio has a healthcheck');
  assert.ok(
    volumeTargets(minio).some((v) => v.source === 'minio-data' && v.target === '/data'),
    'minio keeps its objects on a named volume',
  );
  assert.ok(config.volumes && 'minio-data' in config.volumes, 'named volume "minio-data" is declared');

  const setup = services['minio-setup'];
  assert.match(setup.image, /^minio\/mc:RELEASE\.\d{4}-\d{2}-\d{2}T/, 'minio-setup is pinned to a release');
  assert.equal(String(setup.restart), 'no', 'minio-setup runs once');
  assert.equal(setup.depends_on?.minio?.condition, 'service_healthy');
  const script = [setup.entrypoint, setup.command].flat().join('\n');
  assert.match(script, /mc mb --ignore-existing "minio\/\$\$GANTRY_S3_BUCKET"/, 'minio-setup creates the bucket');
  assert.match(script, /mc admin user add minio "\$\$S3_ACCESS_KEY_ID"/, "minio-setup creates Gantry's user");
  assert.equal(envOf(setup).GANTRY_S3_BUCKET, 'gantry-models');
  for (const secret of Object.values(S3_SECRETS)) {
    assert.ok(!script.includes(secret), 'no secret on the setup command line: it reads them from its environment');
  }

  // The script as the container's shell gets it ($$ is compose's escape for $): valid sh, and the policy it writes
  // is JSON that allows Gantry's user what the S3 store needs on that bucket and nothing beyond it.
  const shellScript = [setup.command].flat().join('\n').replaceAll('$$', '$');
  const syntax = spawnSync('sh', ['-n', '-e', '-c', shellScript], { encoding: 'utf8' });
  assert.equal(syntax.status, 0, `minio-setup's script is not valid sh: ${syntax.stderr}`);
  const heredoc = /^cat > \S+ <<POLICY\n[\s\S]*?\nPOLICY$/m.exec(shellScript)?.[0];
  assert.ok(heredoc, 'minio-setup writes its policy with a heredoc');
  const written = spawnSync('sh', ['-ec', heredoc.replace(/^cat > \S+ /, 'cat ')], {
    encoding: 'utf8',
    env: { ...cleanEnv, GANTRY_S3_BUCKET: 'gantry-models' },
  });
  assert.equal(written.status, 0, written.stderr);
  const policy = JSON.parse(written.stdout) as { Statement: Array<{ Effect: string; Action: string[]; Resource: string[] }> };
  const allowed = policy.Statement.flatMap((statement) => statement.Action.map((action) => `${action} ${statement.Resource.join(',')}`)).sort();
  assert.deepEqual(allowed, [
    's3:AbortMultipartUpload arn:aws:s3:::gantry-models/*',
    's3:DeleteObject arn:aws:s3:::gantry-models/*',
    's3:GetObject arn:aws:s3:::gantry-models/*',
    's3:ListBucket arn:aws:s3:::gantry-models',
    's3:ListBucketMultipartUploads arn:aws:s3:::gantry-models',
    's3:ListMultipartUploadParts arn:aws:s3:::gantry-models/*',
    's3:PutObject arn:aws:s3:::gantry-models/*',
  ]);
  assert.ok(policy.Statement.every((statement) => statement.Effect === 'Allow'));
});

test('docker-compose.s3.yml refuses to start without the MinIO and S3 secrets, naming the one missing', { skip }, () => {
  for (const missing of Object.keys(S3_SECRETS)) {
    const envFile = join(envDirectory, `s3-without-${missing}.env`);
    writeFileSync(envFile, readFileSync(s3SecretsEnvFile, 'utf8').replace(new RegExp(`^${missing}=.*\n`, 'm'), ''));
    const result = runCompose(['config', '--quiet'], envFile, S3_FILES);
    assert.notEqual(result.status, 0, `compose accepted the S3 stack without ${missing}`);
    assert.match(result.stderr + result.stdout, new RegExp(`set ${missing} in \\.env`));
  }
  // The base file alone does not need them.
  compose(['config', '--quiet'], secretsEnvFile);
});

test('docker-compose.s3.yml with another S3: GANTRY_S3_* from .env reach every gantry service', { skip }, async () => {
  const envFile = join(envDirectory, 's3-aws.env');
  writeFileSync(
    envFile,
    readFileSync(s3SecretsEnvFile, 'utf8') +
      'GANTRY_S3_ENDPOINT=\nGANTRY_S3_FORCE_PATH_STYLE=false\nGANTRY_S3_REGION=eu-west-3\nGANTRY_S3_BUCKET=acme-models\nGANTRY_S3_PREFIX=prod\n',
  );
  const config = await parseYaml(compose(['config'], envFile, S3_FILES));
  for (const name of GANTRY_SERVICES) {
    const env = envOf(config.services[name]);
    // Empty: the application treats it as unset, so the SDK's AWS endpoint for the region.
    assert.equal(env.GANTRY_S3_ENDPOINT ?? '', '', `${name} GANTRY_S3_ENDPOINT`);
    assert.equal(String(env.GANTRY_S3_FORCE_PATH_STYLE), 'false');
    assert.equal(env.GANTRY_S3_REGION, 'eu-west-3');
    assert.equal(env.GANTRY_S3_BUCKET, 'acme-models');
    assert.equal(env.GANTRY_S3_PREFIX, 'prod');
  }
  assert.equal(envOf(config.services['minio-setup']).GANTRY_S3_BUCKET, 'acme-models');
});

test('Dockerfiles: multi-stage, non-root, healthcheck via node, CUDA build installs onnxruntime CUDA libs', () => {
  const cpu = readFileSync(join(root, 'Dockerfile'), 'utf8');
  const cuda = readFileSync(join(root, 'Dockerfile.cuda'), 'utf8');
  for (const [name, text] of [
    ['Dockerfile', cpu],
    ['Dockerfile.cuda', cuda],
  ] as const) {
    assert.ok((text.match(/^FROM /gm) ?? []).length >= 2, `${name} is multi-stage`);
    assert.match(text, /^RUN npm ci\b|^RUN .*\bnpm ci\b/m, `${name} runs npm ci`);
    assert.match(text, /npm run build/, `${name} builds`);
    assert.match(text, /npm prune --omit=dev/, `${name} prunes dev dependencies`);
    assert.match(text, /^USER (?!root\b|0\b)\S+/m, `${name} runs as a non-root user`);
    assert.match(text, /^WORKDIR \/app$/m, `${name} WORKDIR /app`);
    assert.match(text, /GANTRY_DATA_DIR=\/data/, `${name} GANTRY_DATA_DIR=/data`);
    assert.match(text, /HOST=0\.0\.0\.0/, `${name} HOST=0.0.0.0`);
    assert.match(text, /^EXPOSE 8080 8081 9091$/m, `${name} exposes 8080 (HTTP), 8081 (gRPC) and 9091 (worker metrics)`);
    assert.match(text, /GANTRY_GRPC_PORT=8081/, `${name} GANTRY_GRPC_PORT=8081`);
    assert.match(text, /^COPY proto \.\/proto$/m, `${name} ships the gRPC .proto files the API loads`);
    assert.match(text, /^HEALTHCHECK [\s\S]*?CMD node -e /m, `${name} healthcheck uses node`);
    assert.match(text, /COPY --from=build \/app\/package\.json/, `${name} ships package.json ("type": "module")`);
    const instructions = text
      .split('\n')
      .filter((line) => !line.trimStart().startsWith('#'))
      .join('\n');
    assert.doesNotMatch(instructions, /\bcurl\b|\bwget\b/, `${name} uses neither curl nor wget`);
  }
  assert.match(cpu, /^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
  assert.match(cpu, /^CMD \["node", ?"dist\/src\/cli\.js", ?"api"\]$/m);
  assert.match(cpu, /\/v2\/health\/live/);
  assert.match(cuda, /^ARG CUDA_IMAGE=nvidia\/cuda:12\.[0-9.]+-cudnn-runtime-ubuntu\d+\.\d+$/m);
  assert.match(cuda, /ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci .*--onnxruntime-node-install=cuda12/);
  assert.match(cuda, /GANTRY_DEVICE=cuda/);
  assert.match(cuda, /--allow-scripts=onnxruntime-node/, 'Dockerfile.cuda allows the onnxruntime-node install script explicitly');

  const ignore = readFileSync(join(root, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim());
  for (const entry of ['node_modules', 'dist', 'data', '.git', '.env']) assert.ok(ignore.includes(entry), `.dockerignore ${entry}`);
  for (const entry of ['src', 'package.json', 'package-lock.json', '.npmrc', 'tsconfig.json']) {
    assert.ok(!ignore.includes(entry), `.dockerignore must not exclude ${entry}`);
  }
});
