/**
 * Coalescing lanes (src/queue/coalescing-lanes.ts): when requests of one model version and priority leave alone
 * and when they leave together, packing under the payload cap, and that lanes are forgotten when empty.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { CoalescingLanes } from '../../src/queue/coalescing-lanes.js';

interface Request {
  id: string;
  payloadBytes: number;
  settled: boolean;
}

/** Lanes whose every sent job stays in flight until the test finishes it. */
function lanes(options: { maxRequestsPerJob: number; maxJobsInFlight: number; maxPayloadBytesPerJob: number }) {
  const sent: Array<{ priority: number; ids: string[]; finish: () => Promise<void> }> = [];
  const coalescing = new CoalescingLanes<string, Request>(options, (_target, priority, batch) => {
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    sent.push({
      priority,
      ids: batch.map((request) => request.id),
      finish: async () => {
        finish();
        // Let the lane's finally() run and send what waited.
        await new Promise((resolve) => setImmediate(resolve));
      },
    });
    return done;
  });
  const request = (id: string, payloadBytes = 10): Request => ({ id, payloadBytes, settled: false });
  return { coalescing, sent, request };
}

describe('CoalescingLanes', () => {
  test('a lone request leaves at once, alone; requests arriving while it is out leave together when it returns', async () => {
    const { coalescing, sent, request } = lanes({ maxRequestsPerJob: 64, maxJobsInFlight: 2, maxPayloadBytesPerJob: 1 << 20 });
    coalescing.add('m/1/1', 'target', 1, request('a'));
    assert.deepEqual(
      sent.map((job) => job.ids),
      [['a']],
    );
    for (const id of ['b', 'c', 'd']) coalescing.add('m/1/1', 'target', 1, request(id));
    assert.equal(sent.length, 1, 'fewer than a quarter of a job waiting: they wait for the job out');
    await sent[0]!.finish();
    assert.deepEqual(
      sent.map((job) => job.ids),
      [['a'], ['b', 'c', 'd']],
    );
    await sent[1]!.finish();
    assert.equal(coalescing.size, 0, 'an empty lane is forgotten');
  });

  test('a quarter of a job waiting sends a second job, up to maxJobsInFlight', async () => {
    const { coalescing, sent, request } = lanes({ maxRequestsPerJob: 8, maxJobsInFlight: 2, maxPayloadBytesPerJob: 1 << 20 });
    coalescing.add('lane', 'target', 1, request('first'));
    coalescing.add('lane', 'target', 1, request('x1'));
    coalescing.add('lane', 'target', 1, request('x2'));
    assert.deepEqual(
      sent.map((job) => job.ids),
      [['first'], ['x1', 'x2']],
      'two waiting is a quarter of 8',
    );
    for (const id of ['y1', 'y2', 'y3']) coalescing.add('lane', 'target', 1, request(id));
    assert.equal(sent.length, 2, 'no third job while two are out');
    await sent[0]!.finish();
    assert.deepEqual(sent[2]!.ids, ['y1', 'y2', 'y3']);
  });

  test('jobs are packed under the payload cap, and a request larger than the cap still goes, alone', async () => {
    const { coalescing, sent, request } = lanes({ maxRequestsPerJob: 64, maxJobsInFlight: 1, maxPayloadBytesPerJob: 100 });
    coalescing.add('lane', 'target', 1, request('out'));
    for (const [id, bytes] of [
      ['a', 60],
      ['b', 30],
      ['c', 20],
      ['huge', 500],
    ] as const)
      coalescing.add('lane', 'target', 1, request(id, bytes));
    await sent[0]!.finish();
    assert.deepEqual(sent[1]!.ids, ['a', 'b'], '60 + 30 fit in 100; 20 more would not');
    await sent[1]!.finish();
    assert.deepEqual(sent[2]!.ids, ['c']);
    await sent[2]!.finish();
    assert.deepEqual(sent[3]!.ids, ['huge']);
  });

  test('requests settled while waiting are never sent; lanes of different keys never share a job', async () => {
    const { coalescing, sent, request } = lanes({ maxRequestsPerJob: 64, maxJobsInFlight: 1, maxPayloadBytesPerJob: 1 << 20 });
    coalescing.add('priority-1', 'target', 1, request('p1'));
    coalescing.add('priority-2', 'target', 2, request('p2'));
    assert.deepEqual(
      sent.map((job) => [job.priority, job.ids]),
      [
        [1, ['p1']],
        [2, ['p2']],
      ],
    );
    const gone = request('gone');
    coalescing.add('priority-1', 'target', 1, gone);
    coalescing.add('priority-1', 'target', 1, request('kept'));
    gone.settled = true;
    await sent[0]!.finish();
    assert.deepEqual(sent[2]!.ids, ['kept']);
    await sent[1]!.finish();
    await sent[2]!.finish();
    assert.equal(coalescing.size, 0);
  });
  test("a lane with a gather time holds an idle lane's requests for it, then sends them in one job", async () => {
    const { coalescing, sent, request } = lanes({ maxRequestsPerJob: 64, maxJobsInFlight: 2, maxPayloadBytesPerJob: 1 << 20 });
    coalescing.add('shadow', 'target', 9, request('a'), 40);
    coalescing.add('shadow', 'target', 9, request('b'), 40);
    assert.equal(sent.length, 0, 'nothing leaves before the gather time is up');
    await new Promise((resolve) => setTimeout(resolve, 20));
    coalescing.add('shadow', 'target', 9, request('c'), 40);
    assert.equal(sent.length, 0, 'a later request joins the gathering, which keeps its start');
    await new Promise((resolve) => setTimeout(resolve, 40));
    assert.deepEqual(
      sent.map((job) => job.ids),
      [['a', 'b', 'c']],
    );
    coalescing.add('plain', 'target', 9, request('d'));
    assert.equal(sent.length, 2, 'a lane without a gather time still sends a lone request at once');
    await sent[0]!.finish();
    await sent[1]!.finish();
    assert.equal(coalescing.size, 0);
  });

  test("a gathering leaves early with a job's worth; settled requests leave it without being sent", async () => {
    const { coalescing, sent, request } = lanes({ maxRequestsPerJob: 3, maxJobsInFlight: 1, maxPayloadBytesPerJob: 1 << 20 });
    for (const id of ['a', 'b', 'c']) coalescing.add('shadow', 'target', 9, request(id), 10_000);
    assert.deepEqual(
      sent.map((job) => job.ids),
      [['a', 'b', 'c']],
      'a full job does not wait for the gather time',
    );
    const cancelled = request('gone');
    coalescing.add('shadow', 'target', 9, cancelled, 30);
    cancelled.settled = true;
    await sent[0]!.finish();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(sent.length, 1, 'a settled request is never sent');
    assert.equal(coalescing.size, 0, 'and its lane is forgotten');
  });
});
