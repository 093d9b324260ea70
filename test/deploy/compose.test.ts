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

/** Only PATH and HOME: a developer's GANTRY_* or *_PORT variables must not change what the test sees. */
const cleanEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' };

const haveCompose = spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0;
const skip = haveCompose ? false : 'docker-compose is not installed (apt-get install docker-compose)';

function runCompose(args: string[], envFile: string) {
  return spawnSync('docker-compose', ['--env-file', envFile, '-f', 'docker-compose.yml', ...args], { cwd: root, encoding: 'utf8', env: cleanEnv });
}

function compose(args: string[], envFile = secretsEnvFile): string {
  const result = runCompose(args, envFile);
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
      const [source = '', target = ''] = v.split(':');
      return { source, target };
    }
    return { source: String(v.source), target: String(v.target) };
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

test('.env.example lists every variable docker-compose.yml reads, and works as an .env file', { skip }, async () => {
  const composeText = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
  const example = readFileSync(join(root, '.env.example'), 'utf8');
  const referenced = new Set([...composeText.matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1]));
  assert.ok(referenced.size > 5);
  const listed = new Set([...example.matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]));
  for (const name of referenced) assert.ok(listed.has(name), `.env.example lacks ${name}`);
  for (const name of listed) assert.ok(referenced.has(name), `.env.example lists ${name}, which docker-compose.yml never reads`);
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
