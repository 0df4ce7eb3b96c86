/**
 * The page's one way to the collector: its public REST API, by URLs relative to the page (so a
 * reverse proxy may put it under any prefix), with the bearer token when one was given.
 */

const TOKEN_KEY = 'scitags-collector.token';

export class ApiError extends Error {
  constructor(
    readonly path: string,
    readonly status: number,
    message: string,
  ) {
    super(status === 0 ? `${path}: ${message}` : `${path}: HTTP ${status}: ${message}`);
  }
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null): void {
  if (value === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, value);
}

export type Params = Record<string, string | number | undefined>;

async function request(path: string, params: Params): Promise<Response> {
  const url = new URL(path, document.baseURI);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, String(v));
  const headers: Record<string, string> = {};
  const t = token();
  if (t !== null) headers['authorization'] = `Bearer ${t}`;
  try {
    return await fetch(url, { headers, cache: 'no-store' });
  } catch (err) {
    throw new ApiError(path, 0, `no answer (${err instanceof Error ? err.message : String(err)})`);
  }
}

async function failure(path: string, res: Response): Promise<ApiError> {
  let message = res.statusText;
  try {
    const body = (await res.json()) as { error?: string; message?: string };
    message = [body.error, body.message].filter((x) => x !== undefined && x !== '').join(': ') || message;
  } catch {
    // not JSON (a proxy's error page): the status text says enough
  }
  return new ApiError(path, res.status, message);
}

/** GET path as JSON; `alsoOk` lists statuses whose JSON body is an answer too (/health's 503). */
export async function getJson<T>(path: string, params: Params = {}, alsoOk: readonly number[] = []): Promise<T> {
  const res = await request(path, params);
  if (!res.ok && !alsoOk.includes(res.status)) throw await failure(path, res);
  return (await res.json()) as T;
}

export async function getText(path: string, params: Params = {}): Promise<string> {
  const res = await request(path, params);
  if (!res.ok) throw await failure(path, res);
  return res.text();
}
