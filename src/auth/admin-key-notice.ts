import type { Logger } from '../logger.js';
import type { AdminKeyOutcome } from './admin-key.js';

const rotateHint = '`gantry admin-key rotate` prints a new one and revokes the old one at once (with the same REDIS_URL and GANTRY_QUEUE_PREFIX as the API)';

/**
 * What start-up did about the admin key, in the log. A generated key is the one thing Gantry ever writes a key
 * into: it exists nowhere else, and this line is shown once (later starts say only that it exists).
 */
export function logAdminKey(outcome: AdminKeyOutcome, logger: Logger): void {
  switch (outcome.kind) {
    case 'generated':
      logger.warn(
        `Generated the admin key: ${outcome.key} (shown this once; Gantry keeps only its hash). Send it as 'Authorization: Bearer <key>'. ` +
          `Keep it in a secret store; to replace it, ${rotateHint}, or set GANTRY_ADMIN_KEY.`,
      );
      return;
    case 'configured':
      if (outcome.replaced) logger.info('GANTRY_ADMIN_KEY changed since the last start: its value replaced the previous admin key');
      return;
    case 'rotated-since-configured':
      logger.warn(
        `GANTRY_ADMIN_KEY is set, but the admin key was rotated since (${outcome.rotatedAt}, gantry admin-key rotate): the variable's value is no longer accepted. ` +
          'Use the rotated key, or set GANTRY_ADMIN_KEY to a new value to make that the admin key.',
      );
      return;
    case 'existing':
      logger.info(adminKeyNotice(outcome));
  }
}

/** What a start says when the admin key exists already: that it does, never the key. */
export function adminKeyNotice(outcome: { source: string; createdAt: string }): string {
  return `Admin key: set (${outcome.source}, ${outcome.createdAt}); it was shown once, when it was created. Lost it? ${rotateHint}.`;
}

/**
 * The banner `gantry start` prints on stdout for a key it just generated, so the README's first curl works by
 * copy and paste. `baseUrl` is where the API listens.
 */
export function adminKeyBanner(key: string, baseUrl: string): string {
  const rule = '─'.repeat(72);
  return [
    '',
    `┌${rule}`,
    '│ Gantry generated an admin key. It is shown this once: Gantry keeps only its hash.',
    '│',
    `│   ${key}`,
    '│',
    '│ Try it:',
    `│   curl -H "Authorization: Bearer ${key}" ${baseUrl}/v2`,
    '│',
    '│ Keep it in a secret store. Lost it, or shared it by mistake? In another terminal:',
    '│   gantry admin-key rotate      (npx gantry, or node dist/src/cli.js)',
    '│ prints a new one and revokes this one at once. Or set GANTRY_ADMIN_KEY.',
    `└${rule}`,
    '',
  ].join('\n');
}
