/**
 * rediss://: a redis-server that speaks only TLS (its plain port off), its certificate signed by a private CA made
 * here with openssl. With REDIS_TLS_CA_FILE every connection Gantry opens reaches it (a whole gantry start uploads
 * and serves through it); without the CA the certificate is refused rather than trusted.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createRedis, waitForReady } from '../../src/queue/redis-connection.js';
import { freePort } from '../../src/runtime/free-port.js';
import { fixturePath, inferJson, startGantry, uploadModel } from '../helpers/gantry-process.js';

const run = promisify(execFile);

let directory: string;
let server: ChildProcess | undefined;
let tlsUrl: string;
let caFile: string;

before(async () => {
  directory = await mkdtemp(path.join(os.tmpdir(), 'gantry-redis-tls-'));
  caFile = path.join(directory, 'ca.pem');
  const file = (name: string) => path.join(directory, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', caFile, '-days', '1', '-subj', '/CN=gantry-test-ca']);
  await run('openssl', ['req', ...ec, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1']);
  await writeFile(file('server.ext'), 'subjectAltName=IP:127.0.0.1\n');
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    caFile,
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-out',
    file('server.pem'),
    '-days',
    '1',
    '-extfile',
    file('server.ext'),
  ]);
  const port = await freePort();
  const tls = ['--tls-port', String(port), '--tls-cert-file', file('server.pem'), '--tls-key-file', file('server.key'), '--tls-ca-cert-file', caFile];
  // Clients need no certificate of their own (--tls-auth-clients no), as with most managed Redis services.
  const rest = ['--tls-auth-clients', 'no', '--bind', '127.0.0.1', '--dir', directory, '--appendonly', 'yes', '--save', ''];
  server = spawn('redis-server', ['--port', '0', ...tls, ...rest], { stdio: 'ignore' });
  tlsUrl = `rediss://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const probe = await run('redis-cli', ['--tls', '--cacert', caFile, '-p', String(port), 'ping']).catch(() => ({ stdout: '' }));
    if (probe.stdout.trim() === 'PONG') break;
    if (server.exitCode !== null || Date.now() > deadline) throw new Error(`the TLS redis-server on ${port} did not answer (exit ${server.exitCode})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});

after(async () => {
  if (server !== undefined && server.exitCode === null) {
    const exited = new Promise((resolve) => server!.once('exit', resolve));
    server.kill('SIGKILL');
    await exited;
  }
  await rm(directory, { recursive: true, force: true });
});

test('rediss:// with REDIS_TLS_CA_FILE connects; without the CA the self-signed chain is refused', async () => {
  const trusted = createRedis(tlsUrl, 'producer', 'tls-test', { tlsCaFile: caFile });
  try {
    await waitForReady(trusted, 5000);
    assert.equal(await trusted.ping(), 'PONG');
  } finally {
    trusted.disconnect();
  }

  const untrusted = createRedis(tlsUrl, 'producer', 'tls-test-untrusted');
  const errors: string[] = [];
  untrusted.on('error', (error) => errors.push(error.message));
  try {
    await assert.rejects(waitForReady(untrusted, 1500), /did not become ready/);
    assert.ok(
      errors.some((message) => /self[- ]signed|unable to (get|verify)|certificate/i.test(message)),
      `a certificate error: ${JSON.stringify(errors)}`,
    );
  } finally {
    untrusted.disconnect();
  }
});

test('gantry start over rediss:// uploads and serves (API, reply channel and worker all on TLS)', { timeout: 60_000 }, async () => {
  const gantry = await startGantry({ redisUrl: tlsUrl, env: { REDIS_TLS_CA_FILE: caFile, GANTRY_SHUTDOWN_TIMEOUT_MS: '3000' } });
  try {
    const upload = await uploadModel(gantry.baseUrl, 'mlp', fixturePath('tiny-mlp.onnx'));
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    const reply = await inferJson(gantry.baseUrl, 'mlp', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: new Array(256).fill(0.01) }] });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal(reply.body.outputs[0].shape.join(','), '1,16');
  } finally {
    // startGantry's key cleanup speaks plain Redis without the CA; this server and its keys go at the end instead.
    await gantry.stop();
    await rm(gantry.dataDirectory, { recursive: true, force: true });
  }
});
