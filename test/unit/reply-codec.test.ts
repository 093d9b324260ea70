import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { decodeReply, encodeReply, type ReplyHeader } from '../../src/queue/reply-codec.js';
import { ErrorCode } from '../../src/errors.js';

describe('encodeReply / decodeReply', () => {
  test('infer reply with several bodies round trips header and bytes', () => {
    const first = new Uint8Array(new Float32Array([1.5, -2, 3]).buffer);
    const second = Buffer.from([1, 2, 3, 4, 5]);
    const third = new Uint8Array(0);
    const fourth = new Uint8Array(new BigInt64Array([-1n, 2n ** 62n]).buffer);
    const header: ReplyHeader = {
      kind: 'infer',
      results: [
        {
          correlationId: 'abc-0',
          outputs: [
            { name: 'a', datatype: 'FP32', shape: [1, 3], byteLength: first.byteLength },
            { name: 'b', datatype: 'UINT8', shape: [5], byteLength: second.byteLength },
          ],
        },
        { correlationId: 'abc-1', error: { code: ErrorCode.InvalidArgument, message: 'nope ✗' } },
        {
          correlationId: 'abc-2',
          outputs: [
            { name: 'c', datatype: 'FP32', shape: [0], byteLength: 0 },
            { name: 'd', datatype: 'INT64', shape: [2], byteLength: fourth.byteLength },
          ],
        },
      ],
    };
    const message = encodeReply(header, [first, second, third, fourth]);
    const headerLength = message.readUInt32LE(0);
    assert.equal(message.byteLength, 4 + headerLength + first.byteLength + second.byteLength + fourth.byteLength);

    const decoded = decodeReply(message);
    assert.deepEqual(decoded.header, header);
    assert.deepEqual(decoded.body, Buffer.concat([Buffer.from(first), second, Buffer.from(third), Buffer.from(fourth)]));
    // The layouts cut the body back into the original tensors.
    let offset = 0;
    const pieces: Buffer[] = [];
    for (const result of (decoded.header as Extract<ReplyHeader, { kind: 'infer' }>).results) {
      for (const layout of result.outputs ?? []) {
        pieces.push(decoded.body.subarray(offset, offset + layout.byteLength));
        offset += layout.byteLength;
      }
    }
    assert.equal(offset, decoded.body.byteLength);
    assert.deepEqual(new Float32Array(new Uint8Array(pieces[0]!).buffer), new Float32Array([1.5, -2, 3]));
    assert.deepEqual([...pieces[1]!], [1, 2, 3, 4, 5]);
    assert.equal(pieces[2]!.byteLength, 0);
    assert.deepEqual(new BigInt64Array(new Uint8Array(pieces[3]!).buffer), new BigInt64Array([-1n, 2n ** 62n]));
  });

  test('load reply without bodies', () => {
    const header: ReplyHeader = {
      kind: 'load',
      correlationId: 'x-1',
      signature: { inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 256] }], outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 16] }] },
    };
    const decoded = decodeReply(encodeReply(header));
    assert.deepEqual(decoded.header, header);
    assert.equal(decoded.body.byteLength, 0);
  });

  test('load error reply', () => {
    const header: ReplyHeader = { kind: 'load', correlationId: 'x-2', error: { code: ErrorCode.InvalidModel, message: 'protobuf parsing failed' } };
    assert.deepEqual(decodeReply(encodeReply(header, [])).header, header);
  });

  test('large body (1 MiB) and a non-ASCII header survive', () => {
    const big = new Uint8Array(1024 * 1024);
    for (let index = 0; index < big.length; index++) big[index] = (index * 31) & 0xff;
    const header: ReplyHeader = {
      kind: 'infer',
      results: [{ correlationId: 'ü-ñ-日本', outputs: [{ name: 'ß', datatype: 'UINT8', shape: [big.length], byteLength: big.length }] }],
    };
    const decoded = decodeReply(encodeReply(header, [big]));
    assert.deepEqual(decoded.header, header);
    assert.ok(Buffer.from(big).equals(decoded.body));
  });

  test('body views do not leak bytes from a shared buffer', () => {
    const shared = Buffer.from([9, 9, 1, 2, 3, 9, 9]);
    const view = shared.subarray(2, 5);
    const header: ReplyHeader = { kind: 'infer', results: [{ correlationId: 'v', outputs: [{ name: 'o', datatype: 'UINT8', shape: [3], byteLength: 3 }] }] };
    assert.deepEqual([...decodeReply(encodeReply(header, [view])).body], [1, 2, 3]);
  });
});
