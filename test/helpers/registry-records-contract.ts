import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RegistryRecords } from '../../src/registry/registry-records.js';

/** One implementation of the registry records, over a fresh, empty store. */
export interface RecordsUnderTest {
  /** The records of one deployment (queue prefix). */
  records(prefix: string): RegistryRecords;
  /** Every file (object) under `relative`, a path inside the registry root such as `p/models/m/`, relative to it, sorted. */
  filesUnder(relative: string): Promise<string[]>;
  /** The warm-up samples live records name, over every deployment in the store. */
  samplesNamed(): Promise<Set<string>>;
  /** Puts a file there by hand (not through the records), at a path inside the registry root. */
  writeByHand(relative: string, text: string): Promise<void>;
}

const signature = {
  inputs: [{ name: 'input', datatype: 'FP32' as const, shape: [-1, 4] }],
  outputs: [{ name: 'output', datatype: 'FP32' as const, shape: [-1, 4] }],
};

/**
 * The checks every RegistryRecords implementation passes (file-registry-records.ts, s3-registry-records.ts): the
 * same layout, so a registry folder copied into a bucket reads back the same. `open` gives a fresh store per test.
 */
export function registryRecordsContract(open: () => Promise<RecordsUnderTest>): void {
  test('records, tombstones, signatures and configurations read back; the highest number counts deleted versions', async () => {
    const store = await open();
    const records = store.records('p');
    await records.writeVersion({
      name: 'm',
      version: '1',
      sha256: 'a'.repeat(64),
      size: 10,
      createdAt: '2026-01-01T00:00:00.000Z',
      configAtUpload: { maxBatchSize: 2 },
    });
    await records.writeVersion({ name: 'm', version: '2', sha256: 'b'.repeat(64), size: 20, createdAt: '2026-01-02T00:00:00.000Z' });
    await records.writeVersion({ name: 'm', version: '3', sha256: 'c'.repeat(64), size: 30, createdAt: '2026-01-03T00:00:00.000Z' });
    await records.writeSignature('m', '1', signature);
    await records.writeSignature('m', '3', signature);
    await records.markDeleted('m', '3');
    await records.writeModelConfig('m', { maxBatchSize: 8 });
    assert.equal(await records.highestVersion('m'), 3, 'the deleted latest version keeps its number taken');
    assert.equal(await records.highestVersion('never'), 0);

    const [model, ...rest] = await records.readAll();
    assert.deepEqual(rest, []);
    assert.equal(model!.name, 'm');
    assert.equal(model!.highestVersion, 3);
    assert.deepEqual(model!.config, { maxBatchSize: 8 });
    assert.deepEqual(
      model!.versions.map(({ version, sha256, signature: recorded, configAtUpload }) => ({ version, sha256, recorded, configAtUpload })),
      [
        { version: '1', sha256: 'a'.repeat(64), recorded: signature, configAtUpload: { maxBatchSize: 2 } },
        { version: '2', sha256: 'b'.repeat(64), recorded: undefined, configAtUpload: undefined },
      ],
    );
    // One file per record; a deleted version's signature goes with it; no temporary is left behind.
    assert.deepEqual(await store.filesUnder('p/models/m/'), ['1.json', '1.signature.json', '2.json', '3.json', 'config.json']);
    await records.writeModelConfig('m', undefined);
    assert.equal((await records.readAll())[0]!.config, undefined);
  });

  test('warm-up samples and routing (aliases, traffic policy) read back; a deleted version takes its sample, and routing can be forgotten', async () => {
    const store = await open();
    const records = store.records('p');
    for (const version of ['1', '2']) {
      await records.writeVersion({ name: 'm', version, sha256: version.repeat(64), size: 1, createdAt: '2026-01-01T00:00:00.000Z' });
      await records.writeWarmupSample('m', version, `${version}f`.repeat(32));
    }
    await records.markDeleted('m', '2');
    const routing = {
      aliases: [{ alias: 'production', version: '1', updatedAt: '2026-01-01T00:00:00.000Z' }],
      traffic: { splits: [{ version: '1', weight: 1 }], updatedAt: '2026-01-01T00:00:00.000Z' },
    };
    await records.writeRouting('m', routing);
    const [model] = await records.readAll();
    assert.deepEqual(
      model!.versions.map(({ version, warmupSample }) => ({ version, warmupSample })),
      [{ version: '1', warmupSample: '1f'.repeat(32) }],
    );
    assert.deepEqual(model!.routing, routing);
    assert.deepEqual([...(await store.samplesNamed())], ['1f'.repeat(32)], 'a deleted version names no sample');
    await records.writeRouting('m', undefined);
    assert.equal((await records.readAll())[0]!.routing, undefined);
    assert.deepEqual(await store.filesUnder('p/models/m/'), ['1.json', '1.warmup.json', '2.json']);
  });

  test('names differing only in case get folders of their own (safe on case-insensitive filesystems), and read back by name', async () => {
    const store = await open();
    const records = store.records('p');
    await records.writeVersion({ name: 'Mlp', version: '1', sha256: 'a'.repeat(64), size: 1, createdAt: '' });
    await records.writeVersion({ name: 'mlp', version: '1', sha256: 'b'.repeat(64), size: 1, createdAt: '' });
    assert.deepEqual(await store.filesUnder('p/models/'), ['^mlp/1.json', 'mlp/1.json']);
    assert.deepEqual(
      (await records.readAll()).map((model) => [model.name, model.versions[0]!.sha256[0]]),
      [
        ['Mlp', 'a'],
        ['mlp', 'b'],
      ],
    );
    assert.equal(await records.highestVersion('MLP'), 0);
  });

  test('a deployment id is claimed once: concurrent claims all get the first one; another prefix is another deployment', async () => {
    const store = await open();
    const records = store.records('p');
    assert.equal(await records.readDeploymentId(), undefined);
    const claimed = await Promise.all(Array.from({ length: 20 }, (_, index) => records.claimDeploymentId(`id-${index}`)));
    assert.equal(new Set(claimed).size, 1, JSON.stringify(claimed));
    assert.equal(await records.readDeploymentId(), claimed[0]);
    assert.equal(await records.claimDeploymentId('a-later-one'), claimed[0], 'a later claim gets the held id');
    assert.deepEqual(await store.filesUnder('p/'), ['deployment.json']);
    assert.equal(await store.records('q').claimDeploymentId('other'), 'other');
  });

  test('a hand-made record that does not parse is skipped, not fatal', async () => {
    const store = await open();
    const records = store.records('p');
    await records.writeVersion({ name: 'm', version: '1', sha256: 'a'.repeat(64), size: 1, createdAt: '' });
    await store.writeByHand('p/models/m/2.json', '{not json');
    const [model] = await records.readAll();
    assert.deepEqual(
      model!.versions.map((version) => version.version),
      ['1'],
    );
    assert.equal(model!.highestVersion, 1);
    assert.equal(await records.highestVersion('m'), 2, 'its number still counts as taken');
  });
}
