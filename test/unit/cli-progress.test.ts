/** The CLI's progress display (src/cli/progress.ts): the lines it renders and when it draws them. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes, formatDuration, ProgressReporter, renderBarLine, renderPlainLine } from '../../src/cli/progress.js';

describe('formatting', () => {
  test('sizes and durations read as people write them', () => {
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(12_300), '12.3 KB');
    assert.equal(formatBytes(4_500_000), '4.5 MB');
    assert.equal(formatBytes(1_234_000_000), '1.2 GB');
    assert.equal(formatBytes(150_000_000), '150 MB');
    assert.equal(formatDuration(45), '45s');
    assert.equal(formatDuration(185), '3m05s');
    assert.equal(formatDuration(3725), '1h02m');
  });

  test('the terminal line: bar, percentage, amounts, rate and ETA', () => {
    const line = renderBarLine('Uploading m.onnx', { done: 4_500_000, total: 10_000_000, elapsedMs: 3000, unit: 'bytes' }, 20);
    assert.equal(line, `Uploading m.onnx [${'█'.repeat(9)}${'░'.repeat(11)}]  45%  4.5 MB/10.0 MB  1.5 MB/s  ETA 4s`);
    const done = renderBarLine('Uploading m.onnx', { done: 10, total: 10, elapsedMs: 1000, unit: 'bytes' }, 10);
    assert.match(done, /\[█{10}\] 100% {2}10 B\/10 B {2}10 B\/s$/, 'no ETA once done');
    assert.match(renderBarLine('x', { done: 0, total: 10, elapsedMs: 0, unit: 'bytes' }, 10), /ETA \?$/, 'no rate yet: the ETA is unknown');
  });

  test('the plain line for pipes and logs, and item counts', () => {
    assert.equal(
      renderPlainLine('Batch b1', { done: 30, total: 120, elapsedMs: 10_000, unit: 'items', noun: 'lines' }),
      'Batch b1: 25% (30/120 lines, 3.0/s, ETA 30s)',
    );
    assert.equal(renderPlainLine('Upload', { done: 2000, total: undefined, elapsedMs: 1000, unit: 'bytes' }), 'Upload: 2.0 KB, 2.0 KB/s');
  });
});

/** An output that records what is written, with a clock the test moves. */
function recorder(isTTY: boolean) {
  const writes: string[] = [];
  let now = 0;
  return {
    writes,
    output: { isTTY, columns: 100, write: (text: string) => writes.push(text) },
    clock: { now: () => now, advance: (ms: number) => (now += ms) },
  };
}

describe('ProgressReporter', () => {
  test('on a terminal: redraws one line in place, at most every 100 ms, and ends it on finish', () => {
    const { writes, output, clock } = recorder(true);
    const reporter = new ProgressReporter(output, 'Uploading', { unit: 'bytes', now: clock.now });
    clock.advance(150);
    reporter.update(100, 1000);
    reporter.update(200, 1000); // within 100 ms: not drawn
    clock.advance(100);
    reporter.update(300, 1000);
    reporter.finish(1000, 1000);
    assert.equal(writes.length, 4, `writes: ${JSON.stringify(writes)}`);
    assert.ok(
      writes.slice(0, 3).every((text) => text.startsWith('\r\x1b[2K') && !text.includes('\n')),
      'each draw returns to the line start and clears it',
    );
    assert.match(writes[0]!, /10%/);
    assert.match(writes[1]!, /30%/);
    assert.match(writes[2]!, /100%/);
    assert.equal(writes[3], '\n');
  });

  test('elsewhere: a plain line at each further 10% or every 5 s, never a carriage return', () => {
    const { writes, output, clock } = recorder(false);
    const reporter = new ProgressReporter(output, 'Uploading', { unit: 'bytes', now: clock.now });
    for (let done = 0; done <= 1000; done += 10) {
      clock.advance(10);
      reporter.update(done, 1000);
    }
    reporter.finish(1000, 1000);
    assert.deepEqual(
      writes.map((text) => /: (\d+)%/.exec(text)?.[1]),
      ['0', '10', '20', '30', '40', '50', '60', '70', '80', '90', '100'],
      'one line per 10%, and 100% once',
    );
    assert.ok(writes.every((text) => !text.includes('\r') && text.endsWith('\n')));

    const slow = recorder(false);
    const stalled = new ProgressReporter(slow.output, 'Uploading', { unit: 'bytes', now: slow.clock.now });
    stalled.update(1, 1000);
    slow.clock.advance(1000);
    stalled.update(2, 1000); // same 10% step, 1 s later: not printed
    slow.clock.advance(5000);
    stalled.update(3, 1000); // 5 s without a line: printed
    assert.equal(slow.writes.length, 2);
  });

  test('abandon ends a drawn terminal line before an error message, once', () => {
    const { writes, output, clock } = recorder(true);
    const reporter = new ProgressReporter(output, 'Uploading', { unit: 'bytes', now: clock.now });
    clock.advance(200);
    reporter.update(10, 100);
    reporter.abandon();
    reporter.abandon();
    reporter.update(20, 100);
    assert.deepEqual(writes.slice(1), ['\n']);
  });
});
