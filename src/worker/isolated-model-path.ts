import { link, mkdir, mkdtemp, readdir, rm, stat, symlink } from 'node:fs/promises';
import path from 'node:path';

/** How old a leftover isolation folder (of a worker that died mid-load) must be before start-up removes it. */
const staleAfterMs = 60 * 60 * 1000;

/**
 * A blob seen from a folder of its own: onnxruntime resolves an initializer's external data (`location`) against
 * the model file's folder, and the store's folder holds every other model's blob under its sha256, which
 * `GET /v1/models` lists. Loaded from the store itself, a model naming another's sha256 would read that model's
 * weights (reproduced: a 10.8 MB recognizer came back byte for byte). Loaded through a link in an empty folder,
 * any external data resolves to nothing and the load fails; uploads are one self-contained file, so nothing
 * legitimate is lost. The folders sit beside the store's (`blobs/loading/`), on the same filesystem.
 */
export class IsolatedModelPaths {
  /** @param directory where the per-load folders go (under the data dir; shared by workers, so names are unique). */
  constructor(private readonly directory: string) {}

  /** Removes folders left by loads of workers that died, once they are an hour old. */
  async removeStale(now = Date.now()): Promise<void> {
    let entries: string[];
    try {
      entries = await readdir(this.directory);
    } catch {
      return;
    }
    for (const entry of entries) {
      const folder = path.join(this.directory, entry);
      try {
        if (now - (await stat(folder)).mtimeMs > staleAfterMs) await rm(folder, { recursive: true, force: true });
      } catch {
        // another worker removed it first
      }
    }
  }

  /**
   * Links `blobPath` into a new empty folder; returns the path to load from and the function that removes the
   * folder (call it once the sessions exist: onnxruntime does not read the file after creating them).
   */
  async isolate(blobPath: string): Promise<{ modelPath: string; remove: () => Promise<void> }> {
    await mkdir(this.directory, { recursive: true });
    const folder = await mkdtemp(path.join(this.directory, 'load-'));
    const modelPath = path.join(folder, 'model.onnx');
    // A hard link, so the file's real folder is this one (onnxruntime checks external data against the real
    // path of the model's folder); a symlink where the filesystem refuses hard links.
    await link(blobPath, modelPath).catch(() => symlink(blobPath, modelPath));
    return { modelPath, remove: () => rm(folder, { recursive: true, force: true }) };
  }
}
