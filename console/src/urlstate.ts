// Client-side routes and the filters kept in the URL: every screen is deep-linkable and a
// reload (or a shared link) shows the same view with the same filters.

export const BASE = '/.console/';

export type RouteName =
  | 'home' | 'signin' | 'overview' | 'customers' | 'profile' | 'journey' | 'flows' | 'inventory'
  | 'exports' | 'signins' | 'flow' | 'security-customer' | 'policies' | 'notfound';

export interface Route {
  name: RouteName;
  id?: string; // customer id or flow id
}

export type Filters = Record<string, string>;

/** Filters each screen keeps in its URL, in a stable order (so URLs compare equal). */
export const FILTER_KEYS: Record<RouteName, string[]> = {
  home: [], signin: ['return_to'], notfound: [],
  overview: ['from', 'to'],
  customers: ['q'],
  profile: [],
  journey: [],
  flows: ['from', 'to', 'channel', 'stage', 'start', 'steps', 'top', 'window_days'],
  inventory: [],
  exports: ['from', 'to', 'channel', 'stage', 'customer', 'q'],
  signins: ['event', 'provider', 'outcome', 'customer', 'client', 'from', 'to', 'bucket'],
  flow: [],
  'security-customer': [],
  policies: ['customer', 'route'],
};

const SIMPLE: Record<string, RouteName> = {
  '': 'home', signin: 'signin', overview: 'overview', customers: 'customers', flows: 'flows',
  inventory: 'inventory', exports: 'exports', 'security/signins': 'signins', 'security/policies': 'policies',
};

function decodeSeg(s: string): string | null {
  try {
    const d = decodeURIComponent(s);
    // ids are printable: no control characters, no "/" smuggled in, not empty
    return d && !/[\u0000-\u001f\u007f/]/.test(d) ? d : null;
  } catch {
    return null;
  }
}

/** The route a path under /.console/ names (anything else: notfound). */
export function parseRoute(pathname: string): Route {
  if (!pathname.startsWith(BASE) && pathname !== BASE.slice(0, -1)) return { name: 'notfound' };
  const rest = pathname.slice(BASE.length).replace(/\/+$/, '');
  if (rest in SIMPLE) return { name: SIMPLE[rest] };
  const segs = rest.split('/');
  if (segs[0] === 'customers' && segs.length >= 2 && segs.length <= 3) {
    const id = decodeSeg(segs[1]);
    if (id === null) return { name: 'notfound' };
    if (segs.length === 2) return { name: 'profile', id };
    if (segs[2] === 'journey') return { name: 'journey', id };
  }
  if (segs[0] === 'security' && segs.length === 3) {
    const id = decodeSeg(segs[2]);
    if (id !== null && segs[1] === 'flow') return { name: 'flow', id };
    if (id !== null && segs[1] === 'customers') return { name: 'security-customer', id };
  }
  return { name: 'notfound' };
}

/** The path of a route (ids percent-encoded). */
export function routePath(r: Route): string {
  const id = encodeURIComponent(r.id ?? '');
  switch (r.name) {
    case 'home': case 'notfound': return BASE;
    case 'profile': return `${BASE}customers/${id}`;
    case 'journey': return `${BASE}customers/${id}/journey`;
    case 'flow': return `${BASE}security/flow/${id}`;
    case 'security-customer': return `${BASE}security/customers/${id}`;
    case 'signins': return `${BASE}security/signins`;
    case 'policies': return `${BASE}security/policies`;
    default: return BASE + r.name;
  }
}

/** The filters of a query string that the route keeps (unknown keys and empty values dropped). */
export function parseFilters(name: RouteName, search: string): Filters {
  const q = new URLSearchParams(search);
  const out: Filters = {};
  for (const k of FILTER_KEYS[name]) {
    const v = q.get(k);
    if (v !== null && v !== '') out[k] = v;
  }
  return out;
}

/** The URL (path + query) of a route with filters, keys in FILTER_KEYS order. */
export function buildUrl(r: Route, filters: Filters = {}): string {
  const q = new URLSearchParams();
  for (const k of FILTER_KEYS[r.name]) {
    const v = filters[k];
    if (v !== undefined && v !== '') q.append(k, v);
  }
  const s = q.toString();
  return routePath(r) + (s ? '?' + s : '');
}

/** Filters with one key set (or removed when value is empty). */
export function withFilter(f: Filters, key: string, value: string | null | undefined): Filters {
  const out = { ...f };
  if (value === null || value === undefined || value === '') delete out[key];
  else out[key] = value;
  return out;
}

/** A return_to for the sign-in: only a /.console/ path of this app (never another origin). */
export function safeReturnTo(v: string | null | undefined): string {
  if (!v || !v.startsWith(BASE) || /[\\\u0000-\u001f]/.test(v)) return BASE;
  return v;
}
