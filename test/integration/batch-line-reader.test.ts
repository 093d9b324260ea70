/**
 * The JSONL reader of batch bodies (src/jobs/batch-line-reader.ts): lines as they arrive across network chunks,
 * LF and CRLF, blank lines skipped, and each bound refused (413 naming its variable) as soon as it is passed.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { GantryError } from '../../src/errors.js';
import { batchBodyLimitOf, readBatchLines, type BatchBodyLimits } from '../../src/jobs/batch-line-reader.js';

const roomy: BatchBodyLimits = { maxLineBytes: 1000, maxLines: 1000, maxBytes: 1_000_000 };

async function linesOf(pieces: readonly string[], limits: BatchBodyLimits = roomy): Promise<string[]> {
  const found: string[] = [];
  for await (const line of readBatchLines(Readable.from(pieces.map((piece) => Buffer.from(piece))), limits)) found.push(line.toString('utf8'));
  return found;
}

async function refusal(pieces: readonly string[], limits: BatchBodyLimits): Promise<GantryError> {
  try {
    await linesOf(pieces, limits);
  } catch (error) {
    assert.ok(error instanceof GantryError, String(error));
    return error;
  }
  assert.fail('the body was not refused');
}

describe('batch line reader', () => {
  test('lines split across chunks, CRLF, blank lines and a last line without a line break', async () => {
    assert.deepEqual(await linesOf(['{"a"', ':1}\r\n\n  \r\n{"b":2}\n{"c"', ':3}']), ['{"a":1}', '{"b":2}', '{"c":3}']);
    assert.deepEqual(await linesOf(['\n', '\n']), []);
    assert.deepEqual(await linesOf(['x\ny\n']), ['x', 'y']);
  });

  test('a line longer than GANTRY_MAX_BATCH_LINE_BYTES is refused, also while it is still arriving', async () => {
    const limits = { ...roomy, maxLineBytes: 10 };
    assert.deepEqual(await linesOf(['0123456789\n', '0123456789\r\n'], limits), ['0123456789', '0123456789']);
    const complete = await refusal(['ok\n', '01234567890\n'], limits);
    assert.equal(complete.code, 'PAYLOAD_TOO_LARGE');
    assert.match(complete.message, /Line 1 .*GANTRY_MAX_BATCH_LINE_BYTES \(10 bytes\)/);
    assert.equal(batchBodyLimitOf(complete), 'batch_line_bytes');
    // Never ends: refused once the bytes so far pass the bound, without waiting for a line break.
    const endless = Readable.from(
      (function* () {
        for (;;) yield Buffer.from('aaaa');
      })(),
    );
    await assert.rejects(async () => {
      for await (const line of readBatchLines(endless, limits)) void line;
    }, /GANTRY_MAX_BATCH_LINE_BYTES/);
  });

  test('more lines than GANTRY_MAX_BATCH_LINES, or more bytes than GANTRY_MAX_BATCH_BYTES, are refused', async () => {
    const lines = await refusal(['a\nb\n\nc\n'], { ...roomy, maxLines: 2 });
    assert.equal(lines.code, 'PAYLOAD_TOO_LARGE');
    assert.match(lines.message, /GANTRY_MAX_BATCH_LINES \(2\)/);
    assert.equal(batchBodyLimitOf(lines), 'batch_lines');
    assert.deepEqual(await linesOf(['a\n\nb\n\n'], { ...roomy, maxLines: 2 }), ['a', 'b'], 'blank lines do not count');
    const bytes = await refusal(['aaaa\n', 'bbbb\n', 'cccc\n'], { ...roomy, maxBytes: 12 });
    assert.equal(bytes.code, 'PAYLOAD_TOO_LARGE');
    assert.match(bytes.message, /GANTRY_MAX_BATCH_BYTES \(12 bytes\)/);
    assert.equal(batchBodyLimitOf(bytes), 'batch_bytes');
    assert.equal(batchBodyLimitOf(new Error('other')), undefined);
  });
});
