import { describe, it, expect } from 'vitest';
import { parseRoute, parseFilters, buildUrl, withFilter, safeReturnTo, routePath, type Route } from '../src/urlstate';

describe('routes', () => {
  it('parses every screen', () => {
    expect(parseRoute('/.console/')).toEqual({ name: 'home' });
    expect(parseRoute('/.console')).toEqual({ name: 'home' });
    expect(parseRoute('/.console/overview')).toEqual({ name: 'overview' });
    expect(parseRoute('/.console/customers/c%2F1')).toEqual({ name: 'notfound' });
    expect(parseRoute('/.console/customers/abc')).toEqual({ name: 'profile', id: 'abc' });
    expect(parseRoute('/.console/customers/abc/journey')).toEqual({ name: 'journey', id: 'abc' });
    expect(parseRoute('/.console/security/signins')).toEqual({ name: 'signins' });
    expect(parseRoute('/.console/security/flow/f-1')).toEqual({ name: 'flow', id: 'f-1' });
    expect(parseRoute('/.console/security/customers/abc')).toEqual({ name: 'security-customer', id: 'abc' });
    expect(parseRoute('/.console/security/policies')).toEqual({ name: 'policies' });
    expect(parseRoute('/.console/nope')).toEqual({ name: 'notfound' });
    expect(parseRoute('/other')).toEqual({ name: 'notfound' });
    expect(parseRoute('/.console/customers/%E0%A4%A')).toEqual({ name: 'notfound' });
    expect(parseRoute('/.console/customers/%00x')).toEqual({ name: 'notfound' });
  });

  it('round-trips route + filters through the URL', () => {
    const cases: [Route, Record<string, string>][] = [
      [{ name: 'overview' }, { from: '2026-11-01', to: '2026-11-30' }],
      [{ name: 'flows' }, { from: '2026-11-01', to: '2026-11-30', channel: 'web', stage: 'research', start: 'viewed pricing', steps: '5' }],
      [{ name: 'customers' }, { q: 'ana+test@example.com' }],
      [{ name: 'signins' }, { event: 'login', provider: 'google', outcome: 'failure', client: '127.0.0.1' }],
      [{ name: 'journey', id: 'cust é/1' }, {}],
      [{ name: 'policies' }, { customer: 'c1', route: 'app & co' }],
    ];
    for (const [r, f] of cases) {
      const url = new URL(buildUrl(r, f), 'http://x');
      expect(parseRoute(url.pathname)).toEqual(r.id?.includes('/') ? { name: 'notfound' } : r);
      expect(parseFilters(r.name, url.search)).toEqual(f);
    }
    expect(routePath({ name: 'profile', id: 'a b' })).toBe('/.console/customers/a%20b');
  });

  it('keeps only the keys a screen owns, in a stable order, and no empty values', () => {
    expect(buildUrl({ name: 'overview' }, { to: '2026-12-07', junk: 'x', from: '2026-11-08' })).toBe('/.console/overview?from=2026-11-08&to=2026-12-07');
    expect(parseFilters('overview', '?from=2026-11-08&evil=1&to=')).toEqual({ from: '2026-11-08' });
    expect(buildUrl({ name: 'inventory' }, { q: 'x' })).toBe('/.console/inventory');
  });

  it('adds and removes filters (chips)', () => {
    const f = withFilter({ event: 'login' }, 'provider', 'google');
    expect(f).toEqual({ event: 'login', provider: 'google' });
    expect(withFilter(f, 'event', null)).toEqual({ provider: 'google' });
    expect(withFilter(f, 'event', '')).toEqual({ provider: 'google' });
  });

  it('return_to stays inside the console', () => {
    expect(safeReturnTo('/.console/overview?from=2026-11-01')).toBe('/.console/overview?from=2026-11-01');
    expect(safeReturnTo('https://evil.example/')).toBe('/.console/');
    expect(safeReturnTo('//evil.example/.console/')).toBe('/.console/');
    expect(safeReturnTo('/.console/\\evil')).toBe('/.console/');
    expect(safeReturnTo(null)).toBe('/.console/');
  });
});
