import type { ModelRegistry } from '../registry/model-registry.js';

/** Past this many remembered versions the memory starts again (each entry is one short string). */
const maxRemembered = 10_000;

/**
 * Which warm-up sample each version has (the `warmupSample` of its record), remembered so that an inference job
 * costs no Redis read: a worker that first serves a version through an inference job (not its load job) runs the
 * version's sample before it serves it. A version's entry is forgotten when the registry announces a change to it.
 */
export class VersionWarmupSamples {
  private readonly known = new Map<string, Promise<string | undefined>>();

  constructor(private readonly registry: ModelRegistry) {}

  /** The sha256 of the version's sample; undefined when it has none (or no longer exists). */
  of(model: string, version: string): Promise<string | undefined> {
    const key = keyOf(model, version);
    let sample = this.known.get(key);
    if (sample === undefined) {
      if (this.known.size >= maxRemembered) this.known.clear();
      sample = this.registry.getVersion(model, version).then((record) => record?.warmupSample);
      // A failed read is not remembered: the next job asks again.
      sample.catch(() => this.known.delete(key));
      this.known.set(key, sample);
    }
    return sample;
  }

  /** Forgets what is known of a version (it changed, was reloaded or deleted); undefined `version`: all of the model's. */
  forget(model: string, version?: string): void {
    if (version !== undefined) {
      this.known.delete(keyOf(model, version));
      return;
    }
    for (const key of [...this.known.keys()]) if (key.startsWith(`${model}\n`)) this.known.delete(key);
  }
}

function keyOf(model: string, version: string): string {
  return `${model}\n${version}`;
}
