// The console's pages live in the URL's hash (#/models, #/models/NAME, #/try/NAME, …): the server serves one page.
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  page: 'models' | 'model' | 'upload' | 'try' | 'live' | 'keys' | 'usage';
  /** The model a model or try page is about. */
  model?: string;
}

const pages: ReadonlyArray<Route['page']> = ['models', 'model', 'upload', 'try', 'live', 'keys', 'usage'];

export function parseRoute(hash: string): Route {
  const [page, ...rest] = hash.replace(/^#\/?/, '').split('/');
  const known = pages.find((candidate) => candidate === page);
  if (known === undefined) return { page: 'models' };
  if (known === 'model' || known === 'try') {
    const model = decodeURIComponent(rest.join('/'));
    return model === '' ? { page: 'models' } : { page: known, model };
  }
  return { page: known };
}

export const linkTo = (page: Route['page'], model?: string): string => `#/${page}${model === undefined ? '' : `/${encodeURIComponent(model)}`}`;

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const changed = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return route;
}
