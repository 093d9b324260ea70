/**
 * `node dist/bench/client-upload-memory.js [megabytes=400]`
 *
 * What a streamed upload costs the client's memory (issue 17: no whole-file copy for a 1 GB model). Writes a sparse
 * file of `megabytes`, pushes it with the typed client (models.push from a path) to a sink server in a child
 * process that reads and drops the body, and prints the client process's peak RSS and ArrayBuffer memory against
 * the file's size, sampled at every progress callback. The ratio (peak ArrayBuffers / file size) is the number to
 * read; a client that held the file would show 1.00.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GantryClient } from '../src/client/index.js';

const megabytes = Number(process.argv[2] ?? '400');
const size = megabytes * 1024 * 1024;
const file = path.join(os.tmpdir(), `gantry-upload-memory-${process.pid}.onnx`);
const sinkSource = `
const server = require('node:http').createServer((request, response) => {
  let bytes = 0;
  request.on('data', (chunk) => (bytes += chunk.length));
  request.on('end', () => { response.writeHead(201, { 'content-type': 'application/json' }); response.end(JSON.stringify({ name: 'm', version: '1', state: 'READY', size: bytes })); });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));`;

const sink = spawn(process.execPath, ['-e', sinkSource], { stdio: ['ignore', 'pipe', 'inherit'] });
try {
  const [portText] = (await once(sink.stdout, 'data')) as [Buffer];
  const handle = await open(file, 'w');
  await handle.truncate(size);
  await handle.close();
  const before = process.memoryUsage();
  const peak = { rss: before.rss, arrayBuffers: before.arrayBuffers };
  const sample = () => {
    const now = process.memoryUsage();
    peak.rss = Math.max(peak.rss, now.rss);
    peak.arrayBuffers = Math.max(peak.arrayBuffers, now.arrayBuffers);
  };
  const started = Date.now();
  const pushed = await new GantryClient({ url: `http://127.0.0.1:${portText.toString().trim()}` }).models.push(file, { name: 'm', onProgress: sample });
  const seconds = (Date.now() - started) / 1000;
  if (pushed.size !== size) throw new Error(`the sink received ${pushed.size} bytes, not ${size}`);
  const mib = (bytes: number) => (bytes / 1024 ** 2).toFixed(0);
  process.stdout.write(
    `pushed ${megabytes} MiB in ${seconds.toFixed(1)} s (${(megabytes / seconds).toFixed(0)} MiB/s); ` +
      `rss ${mib(before.rss)} -> peak ${mib(peak.rss)} MiB; ArrayBuffers peak ${mib(peak.arrayBuffers)} MiB; ` +
      `ratio peak ArrayBuffers / file ${(peak.arrayBuffers / size).toFixed(2)}\n`,
  );
} finally {
  sink.kill();
  await rm(file, { force: true });
}
