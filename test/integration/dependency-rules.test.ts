/**
 * Architecture rules on the compiled output (dist/src): no import cycles; the API never loads onnxruntime or
 * worker code (so an API replica stays small and never runs a model); the worker never loads API code; the
 * transports (the REST infer route, the gRPC service) reach the queue and the protocol's checks only through the
 * data plane (src/inference/), which itself knows no transport.
 * madge (devDependency) gives the graph of local imports; package imports are read from the files themselves.
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { repositoryRoot } from '../helpers/gantry-process.js';

const run = promisify(execFile);
const distSource = path.join(repositoryRoot, 'dist/src');
const madge = path.join(repositoryRoot, 'node_modules/.bin/madge');

type Graph = Map<string, Set<string>>;

function listJsFiles(directory: string, base = directory): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const full = path.join(directory, entry.name);
    if (entry.isDirectory()) files.push(...listJsFiles(full, base));
    else if (entry.name.endsWith('.js')) files.push(path.relative(base, full).split(path.sep).join('/'));
  }
  return files.sort();
}

/** Every module specifier a compiled ES module imports: static imports, re-exports, dynamic imports, require. */
function importSpecifiers(source: string): string[] {
  const patterns = [
    /\b(?:import|export)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\bcreateRequire\([^)]*\)\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  const found = new Set<string>();
  for (const pattern of patterns) for (const match of source.matchAll(pattern)) found.add(match[1]!);
  return [...found];
}

/** Files a module starts as a worker thread or child process (`new URL('./x.js', import.meta.url)`): not imports, but still code it runs. */
function launchedFiles(source: string): string[] {
  return [...source.matchAll(/\bnew\s+URL\(\s*['"]([^'"]+\.js)['"]\s*,\s*import\.meta\.url\s*\)/g)].map((match) => match[1]!);
}

function resolveLocal(file: string, specifier: string): string | undefined {
  const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
  return target.endsWith('.js') && !target.startsWith('..') ? target : undefined;
}

function isOnnxRuntime(specifier: string): boolean {
  return /^onnxruntime-(node|common|web)(\/|$)/.test(specifier);
}

function reachableFrom(graph: Graph, roots: string[]): Set<string> {
  const seen = new Set<string>();
  const stack = [...roots];
  while (stack.length > 0) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const next of graph.get(file) ?? []) stack.push(next);
  }
  return seen;
}

/** One path from a root to a target, for a readable failure message. */
function pathTo(graph: Graph, root: string, isTarget: (file: string) => boolean): string[] | undefined {
  const previous = new Map<string, string | undefined>([[root, undefined]]);
  const queue = [root];
  while (queue.length > 0) {
    const file = queue.shift()!;
    if (isTarget(file)) {
      const chain: string[] = [];
      for (let at: string | undefined = file; at !== undefined; at = previous.get(at)) chain.unshift(at);
      return chain;
    }
    for (const next of graph.get(file) ?? []) {
      if (!previous.has(next)) {
        previous.set(next, file);
        queue.push(next);
      }
    }
  }
  return undefined;
}

/** The transports: thin adapters over the data plane. */
function isTransport(file: string): boolean {
  return file === 'api/routes/infer.js' || file.startsWith('grpc/');
}

/** What only the data plane may use: the queue, and the protocol's checks, decoders and output handling. */
function isDataPlaneInternal(file: string): boolean {
  return (
    file.startsWith('queue/') ||
    [
      'protocol/validate-inputs.js',
      'protocol/json-tensor-codec.js',
      'protocol/classification.js',
      'protocol/schedule-parameters.js',
      'protocol/typed-contents.js',
    ].includes(file)
  );
}

/**
 * Folders whose modules may import the data plane (src/inference/): its transports, the role that builds it, and
 * asynchronous jobs and batch files (src/jobs/), which prepare calls through it and render their answers later.
 */
const dataPlaneImporters = ['api/', 'grpc/', 'inference/', 'jobs/'];

/** Each transport module's direct imports of what only the data plane may use, as "from → to". */
function transportViolations(graph: Graph): string[] {
  const found: string[] = [];
  for (const [file, imports] of graph) {
    if (!isTransport(file)) continue;
    for (const target of imports) if (isDataPlaneInternal(target)) found.push(`${file} → ${target}`);
  }
  return found.sort();
}

/**
 * What the client (src/client/, exported by the package) may reach: itself, the protocol's codecs and the error
 * vocabulary they use; and of packages only gRPC's. Listed as what is allowed rather than what is not, so a new
 * server folder is kept out without anyone remembering to add it here.
 */
function isClientAllowed(file: string): boolean {
  return file.startsWith('client/') || file.startsWith('protocol/') || file === 'errors.js';
}
const clientPackages = new Set(['@grpc/grpc-js', '@grpc/proto-loader']);

/** Each file the client reaches that it may not, with the path that reaches it; and each package it may not use. */
function clientViolations(runsGraph: Graph, packageImports: Map<string, string[]>, roots: string[]): string[] {
  const found: string[] = [];
  for (const root of roots) {
    const outside = pathTo(runsGraph, root, (file) => !isClientAllowed(file));
    if (outside !== undefined) found.push(outside.join(' → '));
  }
  for (const file of reachableFrom(runsGraph, roots)) {
    for (const specifier of packageImports.get(file) ?? []) if (!clientPackages.has(specifier)) found.push(`${file} → ${specifier}`);
  }
  return [...new Set(found)].sort();
}

describe('dependency rules (dist/src)', { timeout: 120_000 }, () => {
  let files: string[];
  /** Imports only (madge's graph plus our own reading): what cycles are about. */
  let graph: Graph;
  /** Imports plus launched worker threads / child processes: what isolation is about. */
  let runsGraph: Graph;
  let packageImports: Map<string, string[]>;

  before(async () => {
    assert.ok(existsSync(distSource), 'dist/src is missing: build first (npx tsc -p tsconfig.json)');
    files = listJsFiles(distSource);
    const { stdout } = await run(madge, ['--json', '--extensions', 'js', distSource], { cwd: repositoryRoot, maxBuffer: 16 * 1024 * 1024 });
    const madgeGraph = JSON.parse(stdout) as Record<string, string[]>;
    graph = new Map(Object.entries(madgeGraph).map(([file, dependencies]) => [file, new Set(dependencies)]));
    // Add what madge may not see (worker-thread URLs, createRequire) from our own reading of each file.
    packageImports = new Map();
    runsGraph = new Map();
    for (const file of files) {
      const source = readFileSync(path.join(distSource, file), 'utf8');
      const specifiers = importSpecifiers(source);
      const edges = graph.get(file) ?? new Set<string>();
      for (const specifier of specifiers.filter((candidate) => candidate.startsWith('.'))) {
        const target = resolveLocal(file, specifier);
        if (target !== undefined) edges.add(target);
      }
      graph.set(file, edges);
      const runs = new Set(edges);
      for (const specifier of launchedFiles(source)) {
        const target = resolveLocal(file, specifier);
        if (target !== undefined) runs.add(target);
      }
      runsGraph.set(file, runs);
      packageImports.set(
        file,
        specifiers.filter((candidate) => !candidate.startsWith('.') && !candidate.startsWith('node:')),
      );
    }
  });

  test('madge saw every compiled module', () => {
    assert.ok(files.length > 20, `only ${files.length} files under dist/src`);
    const madgeFiles = [...graph.keys()];
    for (const file of files) assert.ok(madgeFiles.includes(file), `madge did not list ${file}`);
    assert.ok(graph.get('api/app.js')?.has('api/routes/infer.js'), 'the graph lacks a known edge (api/app.js → api/routes/infer.js)');
  });

  test('the import reader finds static, dynamic and re-export imports (self-check)', () => {
    const sample = `import { a } from './a.js';\nimport * as ort from 'onnxruntime-node';\nexport { b } from "../b.js";\nimport './side.js';\nconst c = await import('./c.js');\nconst w = new URL('./thread.js', import.meta.url);\nconst text = 'mentions onnxruntime-node in a string';`;
    assert.deepEqual(importSpecifiers(sample).sort(), ['../b.js', './a.js', './c.js', './side.js', 'onnxruntime-node'].sort());
    assert.deepEqual(launchedFiles(sample), ['./thread.js']);
  });

  test('no circular imports (madge --circular)', async () => {
    const result = await run(madge, ['--circular', '--json', '--extensions', 'js', distSource], { cwd: repositoryRoot, maxBuffer: 16 * 1024 * 1024 }).catch(
      (error: { stdout?: string; code?: number }) => ({ stdout: error.stdout ?? '', code: error.code }),
    );
    const cycles = JSON.parse(result.stdout) as string[][];
    assert.deepEqual(cycles, [], `circular imports: ${cycles.map((cycle) => cycle.join(' → ')).join('; ')}`);
  });

  test('no cycles in the combined graph either', () => {
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (file: string, trail: string[]): void => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'visiting') assert.fail(`cycle: ${[...trail.slice(trail.indexOf(file)), file].join(' → ')}`);
      state.set(file, 'visiting');
      for (const next of graph.get(file) ?? []) visit(next, [...trail, file]);
      state.set(file, 'done');
    };
    for (const file of graph.keys()) visit(file, []);
  });

  test('positive control: the worker does reach onnxruntime-node', () => {
    const reachable = reachableFrom(runsGraph, ['worker/worker-role.js']);
    assert.ok(
      [...reachable].some((file) => (packageImports.get(file) ?? []).some(isOnnxRuntime)),
      'the walk cannot see onnxruntime-node from the worker',
    );
  });

  test('nothing under api/ imports onnxruntime or worker code, even transitively', () => {
    const apiRoots = files.filter((file) => file.startsWith('api/'));
    assert.ok(apiRoots.includes('api/api-role.js'));
    for (const root of apiRoots) {
      const workerPath = pathTo(runsGraph, root, (file) => file.startsWith('worker/'));
      assert.equal(workerPath, undefined, `${root} reaches worker code: ${workerPath?.join(' → ')}`);
      const ortPath = pathTo(runsGraph, root, (file) => (packageImports.get(file) ?? []).some(isOnnxRuntime));
      assert.equal(ortPath, undefined, `${root} reaches onnxruntime: ${ortPath?.join(' → ')} → onnxruntime-node`);
    }
  });

  test('nothing under worker/ imports api code, even transitively', () => {
    const workerRoots = files.filter((file) => file.startsWith('worker/'));
    assert.ok(workerRoots.includes('worker/worker-role.js'));
    for (const root of workerRoots) {
      const apiPath = pathTo(runsGraph, root, (file) => file.startsWith('api/'));
      assert.equal(apiPath, undefined, `${root} reaches API code: ${apiPath?.join(' → ')}`);
    }
  });

  test('the transports reach the queue and the protocol checks only through the data plane (src/inference/)', () => {
    assert.ok(files.includes('api/routes/infer.js'));
    assert.deepEqual(transportViolations(graph), [], 'a transport imports what only src/inference/ may use: go through InferenceService');
  });

  test('the transport rule catches a forbidden import (self-check)', () => {
    const planted: Graph = new Map([...graph].map(([file, imports]) => [file, new Set(imports)]));
    planted.get('api/routes/infer.js')!.add('protocol/validate-inputs.js');
    planted.set('grpc/planted.js', new Set(['queue/inference-producer.js', 'inference/inference-service.js']));
    assert.deepEqual(transportViolations(planted), ['api/routes/infer.js → protocol/validate-inputs.js', 'grpc/planted.js → queue/inference-producer.js']);
  });

  test('the data plane (src/inference/) reaches no transport or worker code, even transitively', () => {
    const roots = files.filter((file) => file.startsWith('inference/'));
    assert.ok(roots.includes('inference/inference-service.js'));
    for (const root of roots) {
      const transportPath = pathTo(runsGraph, root, (file) => file.startsWith('api/') || file.startsWith('grpc/') || file.startsWith('worker/'));
      assert.equal(transportPath, undefined, `${root} reaches transport or worker code: ${transportPath?.join(' → ')}`);
    }
  });

  test('the client (src/client/) reaches only itself, src/protocol/ and src/errors, and no package but gRPC', () => {
    const roots = files.filter((file) => file.startsWith('client/'));
    assert.ok(roots.includes('client/index.js'), 'dist/src/client/index.js is missing');
    // Positive control: the walk does see the client's edges into the protocol's codecs.
    assert.ok(
      [...reachableFrom(runsGraph, roots)].some((file) => file.startsWith('protocol/')),
      'the walk sees no client → protocol import',
    );
    assert.deepEqual(clientViolations(runsGraph, packageImports, roots), [], 'the client reaches server code or packages: it must build on the protocol alone');
  });

  test('the client rule catches a server import and a server package (self-check)', () => {
    const planted: Graph = new Map([...runsGraph].map(([file, imports]) => [file, new Set(imports)]));
    planted.get('client/index.js')!.add('protocol/planted.js');
    planted.set('protocol/planted.js', new Set(['queue/inference-producer.js']));
    const plantedPackages = new Map(packageImports);
    plantedPackages.set('client/planted-redis.js', ['ioredis']);
    planted.get('client/index.js')!.add('client/planted-redis.js');
    const found = clientViolations(planted, plantedPackages, ['client/index.js']);
    assert.ok(found.includes('client/index.js → protocol/planted.js → queue/inference-producer.js'), found.join('; '));
    assert.ok(found.includes('client/planted-redis.js → ioredis'), found.join('; '));
  });

  test('only api/ and grpc/ import the data plane', () => {
    for (const [file, imports] of graph) {
      if (dataPlaneImporters.some((folder) => file.startsWith(folder))) continue;
      const used = [...imports].filter((target) => target.startsWith('inference/'));
      assert.deepEqual(used, [], `${file} imports the data plane; only ${dataPlaneImporters.join(', ')} may`);
    }
  });
});

describe('dependency rules (dist/bench, dist/support)', () => {
  /** Every local module a compiled bench or support file imports, resolved against the dist root. */
  const localImports = (folder: string): Array<{ file: string; target: string }> =>
    listJsFiles(path.join(repositoryRoot, 'dist', folder)).flatMap((file) => {
      const source = readFileSync(path.join(repositoryRoot, 'dist', folder, file), 'utf8');
      return importSpecifiers(source)
        .filter((specifier) => specifier.startsWith('.'))
        .map((specifier) => ({ file: `${folder}/${file}`, target: path.posix.normalize(path.posix.join(folder, path.posix.dirname(file), specifier)) }));
    });

  test('bench/ and support/ import nothing from test/ (what both need lives in support/)', () => {
    const reaching = [...localImports('bench'), ...localImports('support')].filter(({ target }) => target.startsWith('test/'));
    assert.deepEqual(
      reaching.map(({ file, target }) => `${file} → ${target}`),
      [],
    );
  });

  test('the bench rule sees imports (self-check: bench/ does import support/ and src/)', () => {
    const targets = localImports('bench').map(({ target }) => target);
    assert.ok(targets.some((target) => target.startsWith('support/')));
    assert.ok(targets.some((target) => target.startsWith('src/')));
  });
});
