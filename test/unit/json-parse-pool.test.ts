import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { JsonParsePool, limitOfParseError, parseThreadHeapMb } from '../../src/api/json-parse-pool.js';
import { jsonCostBounds } from '../../src/protocol/json-cost.js';
import { decodedDataMarker } from '../../src/protocol/decoded-json-body.js';
import { ErrorCode, GantryError } from '../../src/errors.js';

const MiB = 1024 ** 2;
const parseOptions = { headerLength: undefined, maxJsonBytes: 64 * MiB, bounds: jsonCostBounds(1_000_000) };

function fp32Body(rows: number): { body: Buffer; data: number[][] } {
  const data = Array.from({ length: rows }, (_, row) => Array.from({ length: 256 }, (_, column) => Math.fround(Math.sin(row * 256 + column))));
  return { body: Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [rows, 256], data }] })), data };
}

describe('JsonParsePool (real worker threads)', () => {
  test('parses off the event loop and hands back the skeleton and the decoded bytes', async () => {
    const pool = new JsonParsePool({ threads: 1, maxOldGenerationSizeMb: 256 });
    try {
      const { body, data } = fp32Body(1000);
      const parsed = await pool.parse(body, parseOptions);
      const header = parsed.header as { inputs: Array<{ data: unknown; shape: number[] }> };
      assert.equal(header.inputs[0]!.data, decodedDataMarker);
      assert.deepEqual(header.inputs[0]!.shape, [1000, 256]);
      const bytes = parsed.inputs[0]!.bytes!;
      const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      assert.deepEqual(Array.from(values), data.flat());
      assert.equal(parsed.binary.byteLength, 0);
    } finally {
      await pool.close();
    }
  });

  test('a body that is a slice of a shared buffer is copied, not taken from under its other users', async () => {
    const pool = new JsonParsePool({ threads: 1, maxOldGenerationSizeMb: 64 });
    try {
      const shared = Buffer.from(`xx{"inputs":[{"name":"a","datatype":"UINT8","shape":[2],"data":[7,8]}]}yy`);
      const body = shared.subarray(2, shared.length - 2);
      const parsed = await pool.parse(body, parseOptions);
      assert.deepEqual([...parsed.inputs[0]!.bytes!], [7, 8]);
      assert.equal(shared.length, 73, 'the shared buffer is intact');
      assert.equal(shared.subarray(0, 2).toString(), 'xx');
    } finally {
      await pool.close();
    }
  });

  test('a binary-extension body: its binary part comes back with the transferred buffer', async () => {
    const pool = new JsonParsePool({ threads: 1, maxOldGenerationSizeMb: 64 });
    try {
      const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } }] }));
      const raw = Buffer.from(new Float32Array([1.5, -2]).buffer);
      const body = Buffer.alloc(header.byteLength + raw.byteLength);
      header.copy(body);
      raw.copy(body, header.byteLength);
      const parsed = await pool.parse(body, { ...parseOptions, headerLength: String(header.byteLength) });
      assert.deepEqual(Buffer.from(parsed.binary), raw);
      assert.equal(body.byteLength, 0, 'the body was transferred, not copied');
    } finally {
      await pool.close();
    }
  });

  test('too costly and invalid bodies are refused with 400; the cost refusal carries its limit label', async () => {
    const pool = new JsonParsePool({ threads: 1, maxOldGenerationSizeMb: 64 });
    try {
      const bomb = Buffer.from(`[${'[],'.repeat(1_000_001)}0]`);
      const refusal = await pool.parse(bomb, parseOptions).then(
        () => assert.fail('the bomb was parsed'),
        (error: unknown) => error,
      );
      assert.ok(refusal instanceof GantryError);
      assert.equal(refusal.code, ErrorCode.InvalidArgument);
      assert.match(refusal.message, /more than 1000000 arrays and objects/);
      assert.equal(limitOfParseError(refusal), 'json_cost');
      const invalid = await pool.parse(Buffer.from('{"inputs": [1,'), parseOptions).catch((error: unknown) => error);
      assert.ok(invalid instanceof GantryError);
      assert.match(invalid.message, /The request body is not valid JSON/);
      assert.equal(limitOfParseError(invalid), undefined);
    } finally {
      await pool.close();
    }
  });

  test('a parse past the heap limit kills only its thread: 400 naming the memory, and the next body is parsed by a new thread', async () => {
    const pool = new JsonParsePool({ threads: 1, maxOldGenerationSizeMb: 48 });
    try {
      // 1 M strings of 40 characters, allocated one by one (~70 MB of heap): past 48 MB, within the cost bounds.
      // A single allocation far past the limit can abort the whole process instead (nodejs/node#47224): the cost
      // bounds keep every admitted body far below the real limit, so this path is the backstop only.
      const element = 'x'.repeat(40);
      const heavy = Buffer.from(
        JSON.stringify({ inputs: [{ name: 't', datatype: 'BYTES', shape: [1_000_000], data: Array.from({ length: 1_000_000 }, () => element) }] }),
      );
      const small = Buffer.from('{"inputs":[{"name":"a","datatype":"UINT8","shape":[1],"data":[5]}]}');
      const [refused, after] = await Promise.allSettled([pool.parse(heavy, parseOptions), pool.parse(small, parseOptions)]);
      assert.equal(refused.status, 'rejected');
      const error = (refused as PromiseRejectedResult).reason as GantryError;
      assert.equal(error.code, ErrorCode.InvalidArgument);
      assert.match(error.message, /needed more than the 48 MB of memory a JSON parse thread has/);
      assert.equal(limitOfParseError(error), 'json_parse_memory');
      assert.equal(after.status, 'fulfilled', String((after as PromiseRejectedResult).reason));
      assert.deepEqual([...(after as PromiseFulfilledResult<Awaited<ReturnType<JsonParsePool['parse']>>>).value.inputs[0]!.bytes!], [5]);
    } finally {
      await pool.close();
    }
  });

  test('bodies beyond the threads wait in order; a cancelled one is not parsed; close refuses what waits', async () => {
    const pool = new JsonParsePool({ threads: 1, maxOldGenerationSizeMb: 256 });
    const one = (value: number) => Buffer.from(`{"inputs":[{"name":"a","datatype":"UINT8","shape":[1],"data":[${value}]}]}`);
    const finished: number[] = [];
    const first = pool.parse(fp32Body(2000).body, parseOptions).then(() => finished.push(0));
    const second = pool.parse(one(1), parseOptions).then(() => finished.push(1));
    const cancelled = pool.parse(one(2), { ...parseOptions, isCancelled: () => true }).catch((error: GantryError) => error.code);
    const third = pool.parse(one(3), parseOptions).then(() => finished.push(3));
    assert.ok(pool.waitingCount >= 2);
    await Promise.all([first, second, third]);
    assert.deepEqual(finished, [0, 1, 3]);
    assert.equal(await cancelled, ErrorCode.Cancelled);

    const busy = pool.parse(fp32Body(2000).body, parseOptions).catch((error: GantryError) => error.code);
    const waiting = pool.parse(one(4), parseOptions).catch((error: GantryError) => error.code);
    await pool.close();
    assert.equal(await busy, ErrorCode.Unavailable);
    assert.equal(await waiting, ErrorCode.Unavailable);
    assert.equal(await pool.parse(one(5), parseOptions).catch((error: GantryError) => error.code), ErrorCode.Unavailable);
    await pool.close();
  });

  test('the heap limit follows the JSON limit: 576 MB for 64 MiB, at least 128 MB', () => {
    assert.equal(parseThreadHeapMb(64 * MiB), 576);
    assert.equal(parseThreadHeapMb(1 * MiB), 128);
  });
});
