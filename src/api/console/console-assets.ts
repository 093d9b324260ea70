import type { FastifyInstance, FastifyReply } from 'fastify';
import fastifyStatic from '@fastify/static';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where `npm run build` (scripts/build-console.mjs) writes the console: dist/console, beside dist/src. */
export const consoleAssetsDirectory = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../console');

/**
 * The console runs only its own bundled files: no inline script or style, nothing from another origin, and it
 * calls only this API. Images may be blob:/data: URLs (the try-it form's previews of picked files).
 */
export const consoleContentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

// esbuild names bundles `<name>-<HASH>.<ext>` (scripts/build-console.mjs): their content never changes under a name.
const hashedFileName = /-[A-Z0-9]{8}\.(js|css)(\.map)?$/;

/** index.html must be revalidated each time (it names the current bundles); hashed bundles are cached for good. */
function setCacheHeaders(reply: FastifyReply, filePath: string): void {
  void reply.header('cache-control', hashedFileName.test(filePath) ? 'public, max-age=31536000, immutable' : 'no-cache');
}

/**
 * Serves the built console under /console/ (and /console redirects there), with the CSP and cache headers above.
 * The files are public: the console asks its user for an API key and sends it with each API call itself.
 */
export async function consoleAssets(app: FastifyInstance): Promise<void> {
  if (!existsSync(path.join(consoleAssetsDirectory, 'index.html')))
    app.log.warn({ directory: consoleAssetsDirectory }, 'the web console is not built (npm run build builds it); /console answers 404');
  app.addHook('onSend', async (_request, reply) => {
    void reply.header('content-security-policy', consoleContentSecurityPolicy);
    void reply.header('x-content-type-options', 'nosniff');
    void reply.header('referrer-policy', 'no-referrer');
  });
  app.get('/console', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/console/', 302));
  await app.register(fastifyStatic, {
    root: consoleAssetsDirectory,
    prefix: '/console/',
    cacheControl: false,
    setHeaders: setCacheHeaders,
    dotfiles: 'deny',
    // A missing root is already warned about above, in words a user can act on.
    suppressWarning: true,
    decorateReply: false,
    schemaHide: true,
  });
}
