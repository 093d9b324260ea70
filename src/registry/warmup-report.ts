import { z } from 'zod';

/**
 * How a version's warm-up went on the worker that loaded it:
 * - `ok`: the uploader's sample (or, without one, zero-filled inputs) ran on every instance;
 * - `skipped`: no sample was given and the zero-filled inputs failed (many models reject zeros, e.g. a state
 *   tensor that must not be empty); the version serves anyway, since nothing says zeros are valid for it;
 * - `failed`: the uploader's sample failed, so the version is UNAVAILABLE with the same reason.
 */
export const warmupReportSchema = z.object({
  status: z.enum(['ok', 'skipped', 'failed']),
  reason: z.string().optional(),
});
export type WarmupReport = z.infer<typeof warmupReportSchema>;

/**
 * Reads the `warmup` field of a version hash: a JSON report, or the plain strings of versions loaded before reports
 * existed ("ok", "skipped", "failed: …", all from the zero-input warm-up, whose failure is now a skip).
 */
export function readWarmupReport(stored: string): WarmupReport {
  if (stored.startsWith('{')) {
    try {
      const parsed = warmupReportSchema.safeParse(JSON.parse(stored));
      if (parsed.success) return parsed.data;
    } catch {
      // Not a report after all: read as an old string below.
    }
  }
  if (stored === 'ok') return { status: 'ok' };
  if (stored.startsWith('failed: ')) return { status: 'skipped', reason: stored.slice('failed: '.length) };
  return { status: 'skipped', reason: 'no warm-up ran' };
}
