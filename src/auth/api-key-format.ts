import { createHash, randomBytes } from 'node:crypto';

/**
 * API keys look like `gk_<keyId>_<secret>`: a visible prefix (so scanners and people recognise one), a short
 * public id (how a key is looked up, listed and revoked; safe to log) and a secret of 32 random bytes in
 * base64url. Only the sha256 of the whole key is stored: the key is high-entropy, so a plain hash cannot be
 * reversed by guessing, and checking it costs about a microsecond.
 */
export const keyIdPattern = /^[a-z0-9]{12}$/;
const apiKeyPattern = /^gk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;
const keyIdAlphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
const secretBytes = 32;

/** The keyId of a well-formed key, or undefined for anything else (which is then refused without asking Redis). */
export function keyIdOf(presented: string): string | undefined {
  const match = apiKeyPattern.exec(presented);
  return match === null ? undefined : match[1];
}

export function newKeyId(): string {
  // 36 does not divide 256: bytes from 252 up would make the first letters likelier; drawing again avoids that.
  let id = '';
  while (id.length < 12) {
    for (const byte of randomBytes(16)) {
      if (byte < 252 && id.length < 12) id += keyIdAlphabet[byte % 36];
    }
  }
  return id;
}

/** A new key and its id. The key is shown to its creator once and never stored. */
export function newApiKey(keyId = newKeyId()): { keyId: string; key: string } {
  return { keyId, key: `gk_${keyId}_${randomBytes(secretBytes).toString('base64url')}` };
}

/**
 * A generated admin key: `gk_admin_<secret>`. Its id part is not a keyId (those are 12 characters), so it is
 * never looked up among the tenants' keys; it is recognised by its hash alone.
 */
export function newAdminKey(): string {
  return `gk_admin_${randomBytes(secretBytes).toString('base64url')}`;
}

/** The stored form of a key: sha256 of its UTF-8 bytes, hex. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}
