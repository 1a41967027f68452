// The console's JSON API client (console/API.md): one place that knows the base path, the CSRF
// header, and how the API's JSON errors map onto what a person is told. Views never call fetch.

export const CONSOLE_BASE = '/.console/';
export const API_BASE = '/.console/api/';

/** An answer other than 2xx, with the API's error code (and the role a 403 names). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly role: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface Me {
  name: string;
  email: string;
  provider: string;
  roles: string[];
  csrf: string;
  demo: boolean;
}

export type Params = Record<string, string | number | boolean | null | undefined>;

/** Query string from params, leaving out empty values; keys in the order given. */
export function queryString(params: Params = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === '' || v === false) continue;
    q.append(k, String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

/** Path segments percent-encoded one by one ("customers", id, "journey"). */
export function apiPath(...segs: string[]): string {
  return segs.map((s) => encodeURIComponent(s)).join('/');
}

/** What a person is told for an error (the views show it in their status region). */
export function errorText(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 401) return 'You are not signed in (or your session ended). Sign in again.';
    if (e.status === 403 && e.code === 'forbidden')
      return `Your role does not include ${e.role ?? 'this view'}: ask an administrator for it.`;
    if (e.status === 403 && e.code === 'csrf') return 'The request was refused (stale page): reload and try again.';
    if (e.status === 503) return 'The gateway is busy or its store is unavailable right now. Retry in a moment.';
    if (e.status === 404) return e.message || 'Not found.';
    if (e.status === 400) return e.message ? `Invalid request: ${e.message}` : 'Invalid request.';
    if (e.status === 409) return e.message || 'The confirmation did not match.';
    return e.message || `The request failed (${e.status}).`;
  }
  return e instanceof Error ? e.message : String(e);
}

export type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

export interface ApiOptions {
  fetch?: FetchFn;
  /** called once per 401 answer, before the error is thrown (the app shows the sign-in screen) */
  onUnauthorized?: () => void;
}

export class Api {
  private csrf = '';
  private readonly fetchFn: FetchFn;
  private readonly onUnauthorized: () => void;

  constructor(opts: ApiOptions = {}) {
    this.fetchFn = opts.fetch ?? ((i, init) => fetch(i, init));
    this.onUnauthorized = opts.onUnauthorized ?? (() => {});
  }

  /** The CSRF token every POST carries; set from `me`. */
  setCsrf(token: string): void {
    this.csrf = token;
  }

  async get<T>(path: string, params?: Params): Promise<T> {
    return this.call<T>('GET', API_BASE + path + queryString(params));
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>('POST', API_BASE + path, body);
  }

  async me(): Promise<Me> {
    const me = await this.get<Me>('me');
    this.setCsrf(me.csrf);
    return me;
  }

  /** POST /.console/logout with the CSRF header; the gateway answers 303 to /.console/. */
  async logout(): Promise<void> {
    const r = await this.fetchFn(CONSOLE_BASE + 'logout', {
      method: 'POST',
      credentials: 'same-origin',
      redirect: 'manual',
      headers: { 'X-CSRF-Token': this.csrf },
    });
    if (!(r.ok || r.type === 'opaqueredirect' || r.status === 303))
      throw await toError(r);
    this.csrf = '';
  }

  private async call<T>(method: 'GET' | 'POST', url: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    const init: RequestInit = { method, credentials: 'same-origin', headers, cache: 'no-store' };
    if (method === 'POST') {
      headers['Content-Type'] = 'application/json';
      headers['X-CSRF-Token'] = this.csrf;
      init.body = JSON.stringify(body ?? {});
    }
    let r: Response;
    try {
      r = await this.fetchFn(url, init);
    } catch {
      throw new ApiError(0, 'network', 'The gateway could not be reached. Check the connection and retry.');
    }
    if (!r.ok) {
      const err = await toError(r);
      if (err.status === 401) this.onUnauthorized();
      throw err;
    }
    try {
      return (await r.json()) as T;
    } catch {
      throw new ApiError(r.status, 'bad_json', 'The gateway sent an answer that is not JSON.');
    }
  }
}

async function toError(r: Response): Promise<ApiError> {
  let code = 'http_' + r.status, message = '', role: string | null = null;
  try {
    const j = (await r.json()) as { error?: unknown; message?: unknown; role?: unknown };
    if (typeof j.error === 'string') code = j.error;
    if (typeof j.message === 'string') message = j.message;
    if (typeof j.role === 'string') role = j.role;
  } catch {
    /* a plain 404 (no console configured) or a proxy's page: the status says it */
  }
  return new ApiError(r.status, code, message || `HTTP ${r.status}`, role);
}
