import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, errors, type GantryError } from '../../src/errors.js';
import { RunWatchdog, type CurrentWork, type StoppedWork, type WatchedThread } from '../../src/worker/run-watchdog.js';

/** A thread that does whatever work the test says, and records what the watchdog told it. */
class FakeThread implements WatchedThread {
  abandonedWith: GantryError | undefined;
  constructor(
    readonly label: string,
    public work: CurrentWork | undefined,
  ) {}
  currentWork(): CurrentWork | undefined {
    return this.abandonedWith === undefined ? this.work : undefined;
  }
  abandon(error: GantryError): void {
    this.abandonedWith = error;
  }
}

function watchdog(stopped: StoppedWork[]) {
  return new RunWatchdog({ maxRunMs: 1000, loadDeadlineMs: 5000 }, { runStopped: errors.runStopped, loadStopped: errors.loadStopped }, (work) =>
    stopped.push(work),
  );
}

describe('RunWatchdog', () => {
  test('stops a run past GANTRY_MAX_RUN_MS with runStopped (504), and leaves idle threads and younger runs alone', () => {
    const stopped: StoppedWork[] = [];
    const dog = watchdog(stopped);
    const requesters = [{ model: 'slow', version: '1' }];
    const old = new FakeThread('old', { kind: 'run', startedAt: 0, requesters });
    const young = new FakeThread('young', { kind: 'run', startedAt: 600, requesters: [] });
    const idle = new FakeThread('idle', undefined);
    for (const thread of [old, young, idle]) dog.watch(thread);
    assert.deepEqual(dog.check(1000), [], 'exactly at the limit is not past it');
    const first = dog.check(1001);
    assert.equal(first.length, 1);
    assert.equal(old.abandonedWith?.code, ErrorCode.DeadlineExceeded);
    assert.match(old.abandonedWith?.message ?? '', /GANTRY_MAX_RUN_MS \(1000 ms\)/);
    assert.deepEqual(stopped, [{ kind: 'run', startedAt: 0, requesters, label: 'old', elapsedMs: 1001 }]);
    assert.equal(young.abandonedWith, undefined);
    assert.equal(idle.abandonedWith, undefined);
    // A stopped thread is no longer watched: it is reported once, not on every tick.
    dog.check(1700);
    assert.deepEqual(
      stopped.map((work) => work.label),
      ['old', 'young'],
    );
  });

  test('stops a load past GANTRY_LOAD_DEADLINE_MS with loadStopped (INVALID_MODEL: the upload gets 422)', () => {
    const stopped: StoppedWork[] = [];
    const dog = watchdog(stopped);
    const loading = new FakeThread('blob', { kind: 'load', startedAt: 0, requesters: [] });
    dog.watch(loading);
    assert.deepEqual(dog.check(4000), [], 'a load may take longer than a run');
    dog.check(5001);
    assert.equal(loading.abandonedWith?.code, ErrorCode.InvalidModel);
    assert.match(loading.abandonedWith?.message ?? '', /GANTRY_LOAD_DEADLINE_MS \(5000 ms\)/);
    assert.equal(stopped[0]?.kind, 'load');
  });

  test('an unwatched thread is never stopped', () => {
    const stopped: StoppedWork[] = [];
    const dog = watchdog(stopped);
    const thread = new FakeThread('gone', { kind: 'run', startedAt: 0, requesters: [] });
    const unwatch = dog.watch(thread);
    unwatch();
    assert.deepEqual(dog.check(10_000), []);
    assert.equal(thread.abandonedWith, undefined);
  });

  test('the timer looks at a tenth of the shorter limit, between 50 ms and 1 s', () => {
    const make = (maxRunMs: number, loadDeadlineMs: number) =>
      new RunWatchdog({ maxRunMs, loadDeadlineMs }, { runStopped: errors.runStopped, loadStopped: errors.loadStopped }, () => undefined);
    assert.equal(make(2000, 120_000).intervalMs, 200);
    assert.equal(make(60_000, 120_000).intervalMs, 1000);
    assert.equal(make(100, 100).intervalMs, 50);
  });
});
