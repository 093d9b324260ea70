/**
 * Structural checks of deploy/kubernetes: every manifest parses, has apiVersion/kind/metadata.name, workloads'
 * selectors match their pod labels, probes hit the right paths and ports, the ScaledObject scales the worker
 * Deployment on gantry_pending_requests. No cluster, kubectl or kubeconform is needed. The s3 Component
 * (deploy/kubernetes/s3) gets the same structural checks, and, where kubectl is installed, a real
 * `kubectl kustomize` render of the base with and without it (skipped elsewhere).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseYamlDocuments } from './yaml.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'deploy/kubernetes')) || !existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('deploy/kubernetes not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

const root = repoRoot();
const k8sDir = join(root, 'deploy/kubernetes');

interface Manifest {
  file: string;
  doc: Doc;
}

async function loadAll(): Promise<Manifest[]> {
  const files = readdirSync(k8sDir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort();
  const all: Manifest[] = [];
  for (const file of files) {
    const docs = parseYamlDocuments(readFileSync(join(k8sDir, file), 'utf8'), file);
    for (const doc of docs) if (doc !== null && doc !== undefined) all.push({ file, doc });
  }
  return all;
}

function find(manifests: Manifest[], kind: string, name: string): Doc {
  const found = manifests.find((m) => m.doc.kind === kind && m.doc.metadata?.name === name);
  assert.ok(found, `${kind}/${name} exists`);
  return found.doc;
}

/** The container port number a probe or Service targets (number or named port). */
function resolvePort(container: Doc, port: number | string): number | undefined {
  if (typeof port === 'number') return port;
  return (container.ports as Doc[] | undefined)?.find((p) => p.name === port)?.containerPort;
}

function probe(container: Doc, kind: 'livenessProbe' | 'readinessProbe' | 'startupProbe'): { path: string; port: number | undefined } {
  const httpGet = container[kind]?.httpGet;
  assert.ok(httpGet, `${container.name} has an httpGet ${kind}`);
  return { path: httpGet.path, port: resolvePort(container, httpGet.port) };
}

const NAMESPACED_EXEMPT = new Set(['Namespace', 'Kustomization']);

test('every manifest parses and has apiVersion, kind, metadata.name and the gantry namespace', async () => {
  const manifests = await loadAll();
  assert.ok(manifests.length >= 10, `found ${manifests.length} documents`);
  for (const { file, doc } of manifests) {
    assert.equal(typeof doc.apiVersion, 'string', `${file}: apiVersion`);
    assert.equal(typeof doc.kind, 'string', `${file}: kind`);
    if (doc.kind === 'Kustomization') continue;
    assert.equal(typeof doc.metadata?.name, 'string', `${file}: metadata.name`);
    assert.match(doc.metadata.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, `${file}: DNS-1123 name`);
    if (!NAMESPACED_EXEMPT.has(doc.kind)) assert.equal(doc.metadata.namespace, 'gantry', `${file}: ${doc.kind} namespace`);
  }
  const kinds = new Set(manifests.map((m) => `${m.doc.kind}/${m.doc.metadata?.name ?? ''}`));
  for (const expected of [
    'Namespace/gantry',
    'ConfigMap/gantry-config',
    'PersistentVolumeClaim/gantry-models',
    'Service/redis',
    'Service/gantry-api',
    'Deployment/gantry-api',
    'Deployment/gantry-worker',
    'ScaledObject/gantry-worker',
  ]) {
    assert.ok(kinds.has(expected), `${expected} is defined`);
  }
  assert.ok(kinds.has('StatefulSet/redis') || kinds.has('Deployment/redis'), 'redis workload is defined');
});

test('kustomization.yaml lists every manifest (worker-gpu.yaml is optional)', async () => {
  const [kustomization] = parseYamlDocuments(readFileSync(join(k8sDir, 'kustomization.yaml'), 'utf8'), 'kustomization.yaml');
  assert.equal(kustomization.kind, 'Kustomization');
  assert.equal(kustomization.namespace, 'gantry');
  const resources = kustomization.resources as string[];
  for (const resource of resources) assert.ok(existsSync(join(k8sDir, resource)), `${resource} exists`);
  const files = readdirSync(k8sDir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml' && f !== 'worker-gpu.yaml');
  assert.deepEqual([...resources].sort(), files.sort());
});

test('workloads: selectors match pod labels, containers have images, Services select a workload', async () => {
  const manifests = await loadAll();
  const workloads = manifests.filter((m) => ['Deployment', 'StatefulSet'].includes(m.doc.kind));
  assert.ok(workloads.length >= 3);
  for (const { file, doc } of workloads) {
    const selector = doc.spec?.selector?.matchLabels as Record<string, string>;
    const labels = doc.spec?.template?.metadata?.labels as Record<string, string>;
    assert.ok(selector && Object.keys(selector).length > 0, `${file}: selector.matchLabels`);
    for (const [k, v] of Object.entries(selector)) assert.equal(labels?.[k], v, `${file}: template label ${k}`);
    const containers = doc.spec.template.spec.containers as Doc[];
    assert.ok(containers.length > 0, `${file}: containers`);
    for (const c of containers) {
      assert.ok(c.name && typeof c.image === 'string' && c.image.length > 0, `${file}: container image`);
      assert.ok(c.resources?.requests, `${file}: ${c.name} has resource requests`);
      assert.ok(c.resources?.limits?.memory, `${file}: ${c.name} has a memory limit`);
    }
  }
  for (const { file, doc } of manifests.filter((m) => m.doc.kind === 'Service')) {
    const selector = doc.spec.selector as Record<string, string>;
    const target = workloads.find((w) => Object.entries(selector).every(([k, v]) => w.doc.spec.template.metadata.labels?.[k] === v));
    assert.ok(target, `${file}: Service ${doc.metadata.name} selects a workload`);
    const container = target.doc.spec.template.spec.containers[0];
    for (const port of doc.spec.ports as Doc[]) {
      assert.ok(resolvePort(container, port.targetPort ?? port.port), `${file}: targetPort ${port.targetPort} exists`);
    }
  }
});

test('api Deployment: probes on 8080, config from the ConfigMap, models volume at /data', async () => {
  const manifests = await loadAll();
  const api = find(manifests, 'Deployment', 'gantry-api');
  const [container] = api.spec.template.spec.containers as Doc[];
  assert.deepEqual(container.args ?? container.command, ['node', 'dist/src/cli.js', 'api']);
  assert.deepEqual(probe(container, 'livenessProbe'), { path: '/v2/health/live', port: 8080 });
  assert.deepEqual(probe(container, 'readinessProbe'), { path: '/v2/health/ready', port: 8080 });
  assert.ok(
    (container.envFrom as Doc[]).some((e) => e.configMapRef?.name === 'gantry-config'),
    'env from the gantry-config ConfigMap',
  );
  const service = find(manifests, 'Service', 'gantry-api');
  assert.equal(service.spec.ports[0].port, 8080);
  // gRPC: the Service's named port reaches the container's.
  const grpcPort = (service.spec.ports as Doc[]).find((p) => p.name === 'grpc');
  assert.equal(grpcPort?.port, 8081);
  assert.equal(grpcPort?.targetPort, 'grpc');
  assert.equal(resolvePort(container, 'grpc'), 8081);
  assertModelsVolume(api, container);
  assert.equal(api.spec.template.metadata.annotations?.['prometheus.io/port'], '8080');
});

function assertModelsVolume(workload: Doc, container: Doc): void {
  const volume = (workload.spec.template.spec.volumes as Doc[]).find((v) => v.persistentVolumeClaim?.claimName === 'gantry-models');
  assert.ok(volume, `${workload.metadata.name} uses the gantry-models PVC`);
  assert.ok(
    (container.volumeMounts as Doc[]).some((m) => m.name === volume.name && m.mountPath === '/data'),
    `${workload.metadata.name} mounts the models volume at /data`,
  );
  assert.ok(workload.spec.template.spec.securityContext?.runAsNonRoot, `${workload.metadata.name} runs as non-root`);
}

test('worker Deployments: metrics port 9091, /health and /ready probes, scrape annotations', async () => {
  const manifests = await loadAll();
  for (const name of ['gantry-worker', 'gantry-worker-gpu']) {
    const worker = find(manifests, 'Deployment', name);
    const [container] = worker.spec.template.spec.containers as Doc[];
    assert.deepEqual(container.args ?? container.command, ['node', 'dist/src/cli.js', 'worker']);
    assert.ok(
      (container.ports as Doc[]).some((p) => p.containerPort === 9091),
      `${name}: containerPort 9091`,
    );
    assert.deepEqual(probe(container, 'livenessProbe'), { path: '/health', port: 9091 });
    assert.deepEqual(probe(container, 'readinessProbe'), { path: '/ready', port: 9091 });
    const annotations = worker.spec.template.metadata.annotations as Record<string, string>;
    assert.equal(annotations['prometheus.io/scrape'], 'true');
    assert.equal(annotations['prometheus.io/port'], '9091');
    assert.equal(annotations['prometheus.io/path'], '/metrics');
    assert.ok(worker.spec.template.spec.terminationGracePeriodSeconds >= 30, `${name}: time to drain on SIGTERM`);
    assertModelsVolume(worker, container);
  }
  const gpu = find(manifests, 'Deployment', 'gantry-worker-gpu').spec.template.spec.containers[0];
  assert.equal(String(gpu.resources.limits['nvidia.com/gpu']), '1');
  assert.ok((gpu.env as Doc[]).some((e) => e.name === 'GANTRY_DEVICE' && e.value === 'cuda'));
});

test('ConfigMap, Redis and the models PVC', async () => {
  const manifests = await loadAll();
  const config = find(manifests, 'ConfigMap', 'gantry-config');
  for (const [key, value] of Object.entries(config.data as Record<string, unknown>)) {
    assert.equal(typeof value, 'string', `ConfigMap ${key} is a string`);
  }
  assert.equal(config.data.HOST, '0.0.0.0');
  assert.equal(config.data.PORT, '8080');
  assert.equal(config.data.GANTRY_GRPC_PORT, '8081');
  assert.equal(config.data.GANTRY_DATA_DIR, '/data');
  assert.equal(config.data.GANTRY_WORKER_METRICS_PORT, '9091');
  assert.ok(['cpu', 'cuda', 'auto'].includes(config.data.GANTRY_DEVICE));
  const apiContainer = find(manifests, 'Deployment', 'gantry-api').spec.template.spec.containers[0];
  const redisUrl = new URL((apiContainer.env as Doc[]).find((entry) => entry.name === 'REDIS_URL').value);
  const redisService = find(manifests, 'Service', redisUrl.hostname);
  assert.equal(redisService.spec.ports[0].port, Number(redisUrl.port || 6379));

  const redis = manifests.find((m) => ['StatefulSet', 'Deployment'].includes(m.doc.kind) && m.doc.metadata.name === 'redis');
  assert.ok(redis);
  const redisContainer = redis.doc.spec.template.spec.containers[0];
  const redisArgs = [...(redisContainer.command ?? []), ...(redisContainer.args ?? [])].join(' ');
  assert.match(redisArgs, /--appendonly\s+yes/);
  assert.match(redisArgs, /--maxmemory-policy\s+noeviction/);
  const persisted =
    (redis.doc.spec.volumeClaimTemplates as Doc[] | undefined)?.length ||
    (redis.doc.spec.template.spec.volumes as Doc[] | undefined)?.some((v) => v.persistentVolumeClaim);
  assert.ok(persisted, 'redis data is on a PVC');

  const pvc = find(manifests, 'PersistentVolumeClaim', 'gantry-models');
  assert.deepEqual(pvc.spec.accessModes, ['ReadWriteMany']);
  assert.ok(pvc.spec.resources.requests.storage);
});

test('secrets: the admin key and the Redis password come from the generated gantry-secrets Secret, never the ConfigMap', async () => {
  const manifests = await loadAll();
  const fromSecret = (container: Doc, name: string) => {
    const entry = (container.env as Doc[] | undefined)?.find((candidate) => candidate.name === name);
    assert.ok(entry, `${container.name}: env ${name}`);
    assert.deepEqual(entry.valueFrom?.secretKeyRef, { name: 'gantry-secrets', key: name }, `${container.name}: ${name} from the Secret`);
  };
  const workloads = ['gantry-api', 'gantry-worker', 'gantry-worker-gpu'].map((name) => find(manifests, 'Deployment', name));
  for (const workload of workloads) {
    const container = workload.spec.template.spec.containers[0];
    fromSecret(container, 'REDIS_PASSWORD');
    const names = (container.env as Doc[]).map((entry) => entry.name);
    // $(REDIS_PASSWORD) expands only when the variable is defined earlier in the list.
    assert.ok(names.indexOf('REDIS_PASSWORD') < names.indexOf('REDIS_URL'), `${workload.metadata.name}: REDIS_PASSWORD before REDIS_URL`);
    assert.equal((container.env as Doc[]).find((entry) => entry.name === 'REDIS_URL').value, 'redis://:$(REDIS_PASSWORD)@redis:6379');
  }
  fromSecret(workloads[0].spec.template.spec.containers[0], 'GANTRY_ADMIN_KEY');
  for (const worker of workloads.slice(1)) {
    assert.ok(
      !(worker.spec.template.spec.containers[0].env as Doc[]).some((entry) => entry.name === 'GANTRY_ADMIN_KEY'),
      `${worker.metadata.name} gets no admin key`,
    );
  }
  const config = find(manifests, 'ConfigMap', 'gantry-config');
  for (const secret of ['GANTRY_ADMIN_KEY', 'REDIS_URL', 'REDIS_PASSWORD']) assert.equal(config.data[secret], undefined, `the ConfigMap holds ${secret}`);

  const redis = find(manifests, 'StatefulSet', 'redis').spec.template.spec.containers[0];
  fromSecret(redis, 'REDIS_PASSWORD');
  const redisCommand = [...(redis.command ?? []), ...(redis.args ?? [])].join(' ');
  assert.match(redisCommand, /requirepass %s.*\| exec redis-server - /, 'requirepass on stdin, not the command line');
  for (const probeName of ['readinessProbe', 'livenessProbe'])
    assert.match(redis[probeName].exec.command.join(' '), /REDISCLI_AUTH=.*redis-cli ping \| grep -q PONG/);

  const [kustomization] = parseYamlDocuments(readFileSync(join(k8sDir, 'kustomization.yaml'), 'utf8'), 'kustomization.yaml');
  assert.deepEqual(kustomization.secretGenerator, [{ name: 'gantry-secrets', envs: ['secrets.env'] }]);
  const example = readFileSync(join(k8sDir, 'secrets.env.example'), 'utf8');
  assert.deepEqual(
    [...example.matchAll(/^([A-Z0-9_]+)=(.*)$/gm)].map((match) => [match[1], match[2]]),
    [
      ['GANTRY_ADMIN_KEY', ''],
      ['REDIS_PASSWORD', ''],
    ],
    'the example holds no secret',
  );
  assert.match(readFileSync(join(k8sDir, '.gitignore'), 'utf8'), /^secrets\.env$/m);
});

test('KEDA ScaledObject scales the worker Deployment on gantry_pending_requests', async () => {
  const manifests = await loadAll();
  const scaled = find(manifests, 'ScaledObject', 'gantry-worker');
  assert.match(scaled.apiVersion, /^keda\.sh\//);
  const ref = scaled.spec.scaleTargetRef;
  assert.equal(ref.kind ?? 'Deployment', 'Deployment');
  find(manifests, 'Deployment', ref.name);
  assert.equal(ref.name, 'gantry-worker');
  assert.ok(scaled.spec.minReplicaCount >= 0 && scaled.spec.maxReplicaCount > scaled.spec.minReplicaCount);
  const trigger = (scaled.spec.triggers as Doc[]).find((t) => t.type === 'prometheus');
  assert.ok(trigger, 'a prometheus trigger');
  assert.match(trigger.metadata.query, /gantry_pending_requests/);
  assert.match(trigger.metadata.serverAddress, /^https?:\/\//);
  assert.equal(typeof trigger.metadata.threshold, 'string', 'KEDA trigger metadata values are strings');
  assert.ok(Number(trigger.metadata.threshold) > 0);
  const text = readFileSync(join(k8sDir, 'keda-scaledobject.yaml'), 'utf8');
  assert.match(text, /LLEN/, 'the file explains why not the redis LLEN trigger');
});

// --- The S3 model store: the kustomize Component in deploy/kubernetes/s3 ------------------------------------------

const s3Dir = join(k8sDir, 's3');

function readS3(file: string): Doc[] {
  return parseYamlDocuments(readFileSync(join(s3Dir, file), 'utf8'), `s3/${file}`).filter((doc) => doc !== null && doc !== undefined);
}

/** The objects the base renders: the manifests its kustomization lists, and the optional worker-gpu.yaml. */
function baseObjects(): Doc[] {
  const [kustomization] = parseYamlDocuments(readFileSync(join(k8sDir, 'kustomization.yaml'), 'utf8'), 'kustomization.yaml');
  const files = [...(kustomization.resources as string[]), 'worker-gpu.yaml'];
  return files.flatMap((file) => parseYamlDocuments(readFileSync(join(k8sDir, file), 'utf8'), file).filter((doc) => doc !== null && doc !== undefined));
}

/** "a=b,c=d" label selectors (the only form the Component uses). */
function matchesSelector(doc: Doc, selector: string): boolean {
  const labels = (doc.metadata?.labels ?? {}) as Record<string, string>;
  return selector.split(',').every((term) => {
    const [key = '', value = ''] = term.split('=');
    return labels[key.trim()] === value.trim();
  });
}

/** Bytes of a Kubernetes quantity such as 14Gi (binary suffixes only). */
function quantityBytes(quantity: string): number {
  const match = /^(\d+)(Ki|Mi|Gi|Ti)?$/.exec(quantity);
  assert.ok(match, `quantity ${quantity}`);
  const scale = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 }[match[2] as 'Ki'] ?? 1;
  return Number(match[1]) * scale;
}

const S3_SECRET = 'gantry-s3-credentials';
const S3_SECRET_KEYS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'];

test('s3 Component: its files parse, it is turned on from the base, and every patch targets an existing object', () => {
  const [component] = readS3('kustomization.yaml');
  assert.equal(component.kind, 'Component', 'a Component: kustomize refuses an overlay inside its base directory');
  assert.match(component.apiVersion, /^kustomize\.config\.k8s\.io\//);
  const patches = component.patches as Array<{ path: string; target?: { kind: string; name?: string; labelSelector?: string } }>;
  const patchFiles = readdirSync(s3Dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  assert.deepEqual(patches.map((patch) => patch.path).sort(), patchFiles.sort(), 'every patch file is listed, and only those');

  const base = baseObjects();
  for (const patch of patches) {
    const [doc] = readS3(patch.path);
    assert.ok(doc.apiVersion && doc.kind && doc.metadata?.name, `${patch.path}: apiVersion, kind, metadata.name`);
    const target = patch.target;
    if (target) {
      const targets = base.filter(
        (object) =>
          object.kind === target.kind &&
          (target.name === undefined || object.metadata.name === target.name) &&
          (target.labelSelector === undefined || matchesSelector(object, target.labelSelector)),
      );
      assert.deepEqual(
        targets.map((object) => object.metadata.name).sort(),
        ['gantry-worker', 'gantry-worker-gpu'],
        `${patch.path} reaches both worker Deployments and nothing else`,
      );
    } else {
      assert.ok(
        base.some((object) => object.kind === doc.kind && object.metadata.name === doc.metadata.name && object.metadata.namespace === doc.metadata.namespace),
        `${patch.path} patches ${doc.kind}/${doc.metadata.name}, which the base defines`,
      );
    }
  }
  // KEDA untouched: nothing in the Component names the ScaledObject.
  for (const file of readdirSync(s3Dir).filter((f) => f.endsWith('.yaml'))) {
    assert.doesNotMatch(JSON.stringify(readS3(file)), /ScaledObject|keda\.sh/, `s3/${file} touches the KEDA trigger`);
  }
  assert.match(readFileSync(join(k8sDir, 'kustomization.yaml'), 'utf8'), /components: \[s3\]/, 'the base says how to turn it on');
});

test('s3 Component: ConfigMap on S3, the PVC deleted, api and workers on their own emptyDir with the S3 Secret', () => {
  const [config] = readS3('configmap.yaml');
  assert.equal(config.data.GANTRY_MODEL_STORE, 's3');
  assert.match(config.data.GANTRY_S3_BUCKET, /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/);
  assert.match(config.data.GANTRY_S3_ENDPOINT, /^(https?:\/\/[^/\s]+)?$/);
  assert.ok(['true', 'false'].includes(config.data.GANTRY_S3_FORCE_PATH_STYLE));
  assert.equal(typeof config.data.GANTRY_S3_REGION, 'string');
  for (const [key, value] of Object.entries(config.data as Record<string, unknown>)) assert.equal(typeof value, 'string', `ConfigMap ${key} is a string`);
  for (const secret of S3_SECRET_KEYS) assert.equal(config.data[secret], undefined, `the ConfigMap holds ${secret}`);
  const cacheBytes = Number(config.data.GANTRY_MODEL_CACHE_BYTES);
  assert.ok(cacheBytes > 0, 'a bounded cache: the emptyDir has a size limit');

  const [pvc] = readS3('models-pvc.yaml');
  assert.equal(pvc.$patch, 'delete');
  assert.equal(pvc.kind, 'PersistentVolumeClaim');
  assert.equal(pvc.metadata.name, 'gantry-models');

  for (const [file, container, minimumBytes] of [
    ['api.yaml', 'api', 0],
    ['workers.yaml', 'worker', cacheBytes],
  ] as const) {
    const [deployment] = readS3(file);
    const spec = deployment.spec.template.spec;
    assert.doesNotMatch(JSON.stringify(deployment), /persistentVolumeClaim/, `${file} mounts no PVC`);
    const volumes = spec.volumes as Doc[];
    assert.ok(
      volumes.some((volume) => volume.name === 'models' && volume.$patch === 'delete'),
      `${file} removes the base's models volume`,
    );
    const [main] = spec.containers as Doc[];
    assert.equal(main.name, container, `${file} patches the ${container} container (merged by name)`);
    const mount = (main.volumeMounts as Doc[]).find((candidate) => candidate.mountPath === '/data');
    const local = volumes.find((volume) => volume.name === mount?.name);
    assert.ok(local?.emptyDir, `${file}: /data is an emptyDir`);
    const limit = quantityBytes(String(local.emptyDir.sizeLimit));
    assert.ok(limit > minimumBytes, `${file}: sizeLimit ${local.emptyDir.sizeLimit} leaves room above GANTRY_MODEL_CACHE_BYTES`);

    const env = main.env as Doc[];
    for (const key of S3_SECRET_KEYS) {
      const entry = env.find((candidate) => candidate.name === key);
      assert.deepEqual(entry?.valueFrom?.secretKeyRef, { name: S3_SECRET, key }, `${file}: ${key} from the ${S3_SECRET} Secret`);
    }
  }
  const [workers] = readS3('workers.yaml');
  const workerLimit = workers.spec.template.spec.volumes.find((volume: Doc) => volume.emptyDir).emptyDir.sizeLimit;
  assert.equal(workers.spec.template.spec.containers[0].resources.requests['ephemeral-storage'], workerLimit, 'workers request the disk they may use');
});

test('s3 Component: the Secret comes from a git-ignored file whose example holds the keys the Deployments read, empty', () => {
  const [component] = readS3('kustomization.yaml');
  assert.deepEqual(component.secretGenerator, [{ name: S3_SECRET, envs: ['s3-credentials.env'] }]);
  const example = readFileSync(join(s3Dir, 's3-credentials.env.example'), 'utf8');
  assert.deepEqual(
    [...example.matchAll(/^([A-Z0-9_]+)=(.*)$/gm)].map((match) => [match[1], match[2]]),
    S3_SECRET_KEYS.map((key) => [key, '']),
    'the example holds no secret',
  );
  assert.match(readFileSync(join(s3Dir, '.gitignore'), 'utf8'), /^s3-credentials\.env$/m);
});

const haveKubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;

/** Renders a copy of deploy/kubernetes with kubectl's kustomize, with placeholder secrets; `s3` adds the Component. */
function render(options: { s3: boolean; gpu: boolean }): Doc[] {
  const copy = mkdtempSync(join(tmpdir(), 'gantry-kustomize-'));
  cpSync(k8sDir, copy, { recursive: true });
  writeFileSync(join(copy, 'secrets.env'), 'GANTRY_ADMIN_KEY=render-test-admin-key-0123456789\nREDIS_PASSWORD=rendertest0123\n');
  writeFileSync(join(copy, 's3', 's3-credentials.env'), 'AWS_ACCESS_KEY_ID=render-test-key\nAWS_SECRET_ACCESS_KEY=render-test-secret\n');
  if (options.gpu) {
    const file = join(copy, 'kustomization.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^ {2}- keda-scaledobject\.yaml$/m, '  - keda-scaledobject.yaml\n  - worker-gpu.yaml'));
  }
  if (options.s3) appendFileSync(join(copy, 'kustomization.yaml'), 'components:\n  - s3\n');
  const result = spawnSync('kubectl', ['kustomize', copy], { encoding: 'utf8' });
  rmSync(copy, { recursive: true, force: true });
  assert.equal(result.status, 0, `kubectl kustomize failed:\n${result.stderr}`);
  return parseYamlDocuments(result.stdout, 'kubectl kustomize').filter((doc) => doc !== null && doc !== undefined);
}

const byKindAndName = (docs: Doc[], kind: string, name: string) => docs.find((doc) => doc.kind === kind && doc.metadata.name === name);

test(
  's3 Component rendered by kubectl kustomize: no PVC anywhere, the hashed Secret referenced, KEDA and Redis unchanged',
  { skip: haveKubectl ? false : 'kubectl is not installed' },
  () => {
    const base = render({ s3: false, gpu: true });
    const s3 = render({ s3: true, gpu: true });

    assert.ok(byKindAndName(base, 'PersistentVolumeClaim', 'gantry-models'), 'the base has the models PVC');
    assert.equal(s3.filter((doc) => doc.kind === 'PersistentVolumeClaim').length, 0, 'the S3 render has no PVC');
    const secret = s3.find((doc) => doc.kind === 'Secret' && String(doc.metadata.name).startsWith(`${S3_SECRET}-`));
    assert.ok(secret, 'the generated S3 Secret (name with its content hash)');
    assert.equal(secret.metadata.namespace, 'gantry');
    assert.deepEqual(Object.keys(secret.data).sort(), [...S3_SECRET_KEYS].sort());
    assert.equal(byKindAndName(s3, 'ConfigMap', 'gantry-config')?.data.GANTRY_MODEL_STORE, 's3');

    for (const name of ['gantry-api', 'gantry-worker', 'gantry-worker-gpu']) {
      const deployment = byKindAndName(s3, 'Deployment', name);
      assert.ok(deployment, `${name} is rendered`);
      const spec = deployment.spec.template.spec;
      assert.ok(!(spec.volumes as Doc[]).some((volume) => volume.persistentVolumeClaim), `${name} mounts no PVC`);
      const [container] = spec.containers as Doc[];
      const mount = (container.volumeMounts as Doc[]).find((candidate) => candidate.mountPath === '/data');
      assert.ok((spec.volumes as Doc[]).find((volume) => volume.name === mount?.name)?.emptyDir, `${name}: /data on an emptyDir`);
      for (const key of S3_SECRET_KEYS) {
        const entry = (container.env as Doc[]).find((candidate) => candidate.name === key);
        assert.deepEqual(entry?.valueFrom?.secretKeyRef, { name: secret.metadata.name, key }, `${name}: ${key} from the generated Secret`);
      }
      // What the base gave the container is still there.
      assert.ok(
        (container.env as Doc[]).some((entry) => entry.name === 'REDIS_URL'),
        `${name} keeps REDIS_URL`,
      );
    }

    // The KEDA trigger, Redis and the Services are the base's, object for object.
    for (const [kind, name] of [
      ['ScaledObject', 'gantry-worker'],
      ['StatefulSet', 'redis'],
      ['Service', 'redis'],
      ['Service', 'gantry-api'],
      ['Namespace', 'gantry'],
    ] as const) {
      assert.ok(byKindAndName(base, kind, name), `${kind}/${name} in the base render`);
      assert.deepEqual(byKindAndName(s3, kind, name), byKindAndName(base, kind, name), `${kind}/${name} is unchanged`);
    }
  },
);
