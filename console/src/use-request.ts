// A GET answer as a component's state: loading, the value, or the API's error (a 403 shown as what it means).
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, apiGet } from './api';

export interface RequestState<T> {
  value?: T;
  error?: ApiError;
  loading: boolean;
  reload: () => void;
}

/** `refreshMs`: read again that long after each read; `refreshKey`: read again whenever it changes. */
export function useRequest<T>(path: string | undefined, refreshMs?: number, refreshKey?: string): RequestState<T> {
  const [state, setState] = useState<{ value?: T; error?: ApiError; loading: boolean }>({ loading: path !== undefined });
  const [generation, setGeneration] = useState(0);
  const reload = useCallback(() => setGeneration((value) => value + 1), []);
  useEffect(() => {
    if (path === undefined) return undefined;
    let current = true;
    apiGet<T>(path).then(
      (value) => current && setState({ value, loading: false }),
      (error: unknown) =>
        current && setState((previous) => ({ ...previous, error: error instanceof ApiError ? error : new ApiError(0, String(error)), loading: false })),
    );
    const timer = refreshMs === undefined ? undefined : setTimeout(reload, refreshMs);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [path, generation, refreshMs, refreshKey]);
  return { ...state, reload };
}
