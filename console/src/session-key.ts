// The API key the user typed, kept for this tab only (sessionStorage: gone when the tab closes, never a cookie).
const storageName = 'gantry.apiKey';

export function storedKey(): string | undefined {
  return sessionStorage.getItem(storageName) ?? undefined;
}

export function storeKey(key: string): void {
  sessionStorage.setItem(storageName, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(storageName);
}

/** The Authorization header for the stored key; none when there is no key (GANTRY_AUTH=off). */
export function authorizationHeaders(): Record<string, string> {
  const key = storedKey();
  return key === undefined || key === '' ? {} : { authorization: `Bearer ${key}` };
}
