import { describe, it, expect } from 'vitest';
import { Api, ApiError, errorText, queryString, apiPath } from '../src/api';

type Call = { url: string; init: RequestInit };
function fakeFetch(answer: (c: Call) => Response) {
  const calls: Call[] = [];
  const fn = async (url: string, init?: RequestInit) => {
    const c = { url, init: init ?? {} };
    calls.push(c);
    return answer(c);
  };
  return { fn, calls };
}
const fail = (p: Promise<unknown>): Promise<ApiError> => p.then(() => { throw new Error('resolved'); }, (e) => e as ApiError);
const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

describe('Api', () => {
  it('GETs JSON under /.console/api/ with the query, no CSRF header', async () => {
    const f = fakeFetch(() => json(200, { ok: 1 }));
    const api = new Api({ fetch: f.fn });
    expect(await api.get('overview', { from: '2026-11-01', to: '2026-11-30', channel: '' })).toEqual({ ok: 1 });
    expect(f.calls[0].url).toBe('/.console/api/overview?from=2026-11-01&to=2026-11-30');
    const h = f.calls[0].init.headers as Record<string, string>;
    expect(h['X-CSRF-Token']).toBeUndefined();
    expect(h.Accept).toBe('application/json');
  });

  it('sends the CSRF token from me on every POST, with a JSON body', async () => {
    const f = fakeFetch((c) => (c.url.endsWith('/me') ? json(200, { name: 'A', email: 'a@x', provider: 'google', roles: ['security'], csrf: 'tok123', demo: false }) : json(200, { revoked: 2 })));
    const api = new Api({ fetch: f.fn });
    await api.me();
    expect(await api.post('customers/c1/sessions/revoke', { all: true })).toEqual({ revoked: 2 });
    const post = f.calls[1];
    expect(post.init.method).toBe('POST');
    const h = post.init.headers as Record<string, string>;
    expect(h['X-CSRF-Token']).toBe('tok123');
    expect(h['Content-Type']).toBe('application/json');
    expect(JSON.parse(String(post.init.body))).toEqual({ all: true });
  });

  it('logout posts to /.console/logout with the CSRF header and accepts the 303', async () => {
    const f = fakeFetch(() => new Response(null, { status: 303, headers: { Location: '/.console/' } }));
    const api = new Api({ fetch: f.fn });
    api.setCsrf('t0k');
    await api.logout();
    expect(f.calls[0].url).toBe('/.console/logout');
    expect((f.calls[0].init.headers as Record<string, string>)['X-CSRF-Token']).toBe('t0k');
  });

  it('turns the API JSON errors into ApiError with code and role', async () => {
    const api = new Api({ fetch: fakeFetch(() => json(403, { error: 'forbidden', role: 'marketer' })).fn });
    const e = await fail(api.get('overview'));
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(403);
    expect(e.code).toBe('forbidden');
    expect(e.role).toBe('marketer');
    expect(errorText(e)).toBe('Your role does not include marketer: ask an administrator for it.');
  });

  it('400 names the parameter; 503 says retry; a plain 404 still becomes an error', async () => {
    const bad = await fail(new Api({ fetch: fakeFetch(() => json(400, { error: 'invalid_parameter', message: 'from: not a date' })).fn }).get('x'));
    expect(errorText(bad)).toContain('from: not a date');
    const busy = await fail(new Api({ fetch: fakeFetch(() => json(503, { error: 'unavailable' })).fn }).get('x'));
    expect(busy.code).toBe('unavailable');
    expect(errorText(busy)).toMatch(/Retry/);
    const plain = await fail(new Api({ fetch: fakeFetch(() => new Response('not found', { status: 404 })).fn }).get('x'));
    expect(plain.status).toBe(404);
    expect(plain.code).toBe('http_404');
  });

  it('calls onUnauthorized on a 401, then throws', async () => {
    let told = 0;
    const api = new Api({ fetch: fakeFetch(() => json(401, { error: 'not_signed_in' })).fn, onUnauthorized: () => told++ });
    const e = await fail(api.get('me'));
    expect(e.status).toBe(401);
    expect(told).toBe(1);
    // a 403 is not a sign-out
    const api2 = new Api({ fetch: fakeFetch(() => json(403, { error: 'csrf' })).fn, onUnauthorized: () => told++ });
    await fail(api2.post('x', {}));
    expect(told).toBe(1);
  });

  it('a network failure and a non-JSON 200 are errors, not crashes', async () => {
    const down = await fail(new Api({ fetch: async () => { throw new TypeError('fetch failed'); } }).get('x'));
    expect(down.code).toBe('network');
    const html = await fail(new Api({ fetch: fakeFetch(() => new Response('<html>', { status: 200 })).fn }).get('x'));
    expect(html.code).toBe('bad_json');
  });
});

describe('query and path helpers', () => {
  it('drops empty values and encodes', () => {
    expect(queryString({ a: '', b: null, c: undefined, d: false, q: 'a b&c', n: 0 })).toBe('?q=a+b%26c&n=0');
    expect(queryString({})).toBe('');
  });
  it('encodes each path segment', () => {
    expect(apiPath('customers', 'a/b?c', 'journey')).toBe('customers/a%2Fb%3Fc/journey');
  });
});
