/**
 * swagger-ui's configuration for /docs. @fastify/swagger-ui writes these functions into the page's script as their
 * source text (so they use only browser globals and nothing from this module's scope).
 *
 * The document a caller gets depends on its key (plugins/openapi.ts: none, no per-model operations). swagger-ui
 * loads the document before anyone clicks Authorize, so: the key given to Authorize is kept in the page's memory
 * (never in storage), sent with the document's own request, and the document is loaded again on Authorize and
 * Logout, so the "served models" section appears for the key.
 */

import type { FastifySwaggerUiOptions } from '@fastify/swagger-ui';

type UiConfig = NonNullable<FastifySwaggerUiOptions['uiConfig']>;
type UiPlugin = NonNullable<UiConfig['plugins']>[number];

interface SwaggerRequest {
  loadSpec?: boolean;
  headers: Record<string, string>;
}

/** Sends the Authorized key with the request for the document itself (`loadSpec`); other requests carry it already. */
function requestInterceptor(request: SwaggerRequest): SwaggerRequest {
  const key = (globalThis as unknown as { gantryDocsKey?: string }).gantryDocsKey;
  if (request.loadSpec === true && typeof key === 'string' && key.length > 0) request.headers.Authorization = `Bearer ${key}`;
  return request;
}

/** swagger-ui's own plugin that loads the document from `url`: given again, since `plugins` replaces the default list. */
function downloadUrlPlugin(system: unknown): unknown {
  return (globalThis as unknown as { SwaggerUIBundle: { plugins: { DownloadUrl: (system: unknown) => unknown } } }).SwaggerUIBundle.plugins.DownloadUrl(system);
}

/** Reloads the document when a key is authorized or logged out, remembering the key for requestInterceptor. */
function reloadOnAuthorizePlugin(system: { specActions: { download: () => void } }): unknown {
  const remember = (key: string | undefined) => ((globalThis as unknown as { gantryDocsKey?: string }).gantryDocsKey = key);
  const keyOf = (payload: Record<string, { value?: unknown }> | undefined): string | undefined => {
    for (const name of ['bearerAuth', 'apiKeyHeader']) {
      const value = payload?.[name]?.value;
      if (typeof value === 'string' && value.length > 0) return value;
    }
    return undefined;
  };
  return {
    statePlugins: {
      auth: {
        wrapActions: {
          authorize: (original: (payload: unknown) => unknown) => (payload: Record<string, { value?: unknown }>) => {
            const result = original(payload);
            remember(keyOf(payload));
            system.specActions.download();
            return result;
          },
          logout: (original: (payload: unknown) => unknown) => (payload: unknown) => {
            const result = original(payload);
            remember(undefined);
            system.specActions.download();
            return result;
          },
        },
      },
    },
  };
}

export const swaggerUiConfig: UiConfig = {
  requestInterceptor: requestInterceptor as unknown as UiConfig['requestInterceptor'],
  plugins: [downloadUrlPlugin, reloadOnAuthorizePlugin] as unknown as UiPlugin[],
  // Keys are secrets: kept in the page's memory only.
  persistAuthorization: false,
  // The JSON example, not swagger-ui's guess from the schema.
  defaultModelRendering: 'example',
  tryItOutEnabled: false,
};
