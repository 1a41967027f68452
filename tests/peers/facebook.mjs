#!/usr/bin/env node
// facebook: a STRICT stand-in for Facebook Login + the Graph API (node:http and
// node:crypto only). Strict on purpose: a test passing against it should prove the
// gateway does the right thing (exact redirect_uri, single-use code, client
// secret, appsecret_proof on every user call, app token on debug_token), not that
// the stand-in is lenient.
//
//   node facebook.mjs --port 0 --app-id 1234567890 --app-secret fb-secret \
//        --redirect-uri http://127.0.0.1:8080/.auth/login/facebook/callback \
//        [--redirect-uri ...] [--version v19.0] [--persona ID:NAME:EMAIL]... [--verbose]
//
// Prints `READY <port>` on stdout when listening. Both the dialog and the Graph
// API live on this one server, under the version prefix:
//   dialog_url = http://127.0.0.1:<port>/v19.0/dialog/oauth
//   graph_url  = http://127.0.0.1:<port>/v19.0
// Endpoints (see README.md for every refusal):
//   GET      /{v}/dialog/oauth      -> 302 redirect_uri?code=..&state=..#_=_ (as Facebook, with the
//                                      `#_=_` fragment); persona=ID picks the user (default: first)
//   GET|POST /{v}/oauth/access_token -> {access_token, token_type:"bearer", expires_in}
//   GET      /{v}/me                 -> needs appsecret_proof = hex HMAC-SHA256(app_secret, token)
//   GET      /{v}/me/permissions     -> same proof rule
//   GET      /{v}/debug_token        -> needs access_token=APPID|APPSECRET
// Admin: POST /admin/token, POST /admin/signed-request, POST /admin/mode,
//        POST /admin/reset, GET /admin/stats.
import http from 'node:http';
import crypto from 'node:crypto';
import {
  quietStdout, parseCli, listen, die, PIXEL_PNG, readBody, sendJson, sendText, safeEqual, verboseLogger,
} from './common.mjs';

const PROG = 'facebook';
const USAGE = `usage: node facebook.mjs --port N --app-id ID --app-secret S --redirect-uri URI
         [--redirect-uri URI | a,b]... [--version v19.0] [--persona ID:NAME:EMAIL]... [--verbose]`;

quietStdout();
const opts = parseCli(PROG, {
  port: { type: 'string' },
  'app-id': { type: 'string', default: '1234567890' },
  'app-secret': { type: 'string', default: 'fb-test-secret' },
  version: { type: 'string', default: 'v19.0' },
  'redirect-uri': { type: 'string', multiple: true, default: [] },
  persona: { type: 'string', multiple: true, default: [] }, // not split on commas: names may hold one
  verbose: { type: 'boolean', default: false },
}, USAGE, ['persona']);
if (opts['redirect-uri'].length === 0) die(PROG, `at least one --redirect-uri is needed\n${USAGE}`);
if (!/^v\d+\.\d+$/.test(opts.version)) die(PROG, `bad --version ${opts.version} (want e.g. v19.0)`);

const APP_ID = opts['app-id'];
const APP_SECRET = opts['app-secret'];
const VERSION = opts.version;
const APP_NAME = 'journeygate test app';
const redirectUris = new Set(opts['redirect-uri']);
const log = verboseLogger(opts.verbose, PROG);
// Tokens minted (by /admin/token) for another app are checked against that
// app's secret, which the gateway cannot know: their appsecret_proof never matches.
const OTHER_APP_SECRET = crypto.randomBytes(16).toString('hex');

// personas: "id:name:email" (email may be empty: the user granted no email)
const personas = new Map();
for (const spec of (opts.persona.length ? opts.persona : ['10000000000001:Alice Example:alice@example.com'])) {
  const first = spec.indexOf(':');
  const last = spec.lastIndexOf(':');
  if (first <= 0 || last === first) die(PROG, `--persona wants ID:NAME:EMAIL (email may be empty), got ${spec}`);
  const id = spec.slice(0, first);
  if (!/^[0-9]+$/.test(id)) die(PROG, `persona id must be numeric (Facebook ids are), got ${id}`);
  personas.set(id, { id, name: spec.slice(first + 1, last), email: spec.slice(last + 1) });
}
const firstPersona = personas.keys().next().value;

let BASE;
const state = {
  mode: 'good', // good | hang | html | deny
  codes: new Map(), // code -> {persona, redirectUri, scopes, expires}
  tokens: new Map(), // token -> {persona, appId, scopes, issuedAt, expiresAt}
  hung: new Set(),
  stats: null,
};
function resetStats() {
  state.stats = {
    dialog_calls: 0, reauthenticate_dialogs: 0, access_token_calls: 0, me_calls: 0, permissions_calls: 0, debug_token_calls: 0,
    admin_token_calls: 0, proof_failures: 0,
  };
}
resetStats();

const now = () => Math.floor(Date.now() / 1000);
const alnum = (n) => {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(crypto.randomBytes(n), (b) => abc[b % abc.length]).join('');
};
const traceId = () => alnum(11);
const parseScopes = (s) => String(s || '').split(/[\s,]+/).filter(Boolean);

function graphError(res, status, { message, type = 'OAuthException', code, subcode }) {
  sendJson(res, status, {
    error: { message, type, code, ...(subcode ? { error_subcode: subcode } : {}), fbtrace_id: traceId() },
  }, { 'WWW-Authenticate': `OAuth "Facebook Platform" "${code === 190 ? 'invalid_token' : 'invalid_request'}" "${message.replace(/"/g, "'")}"` });
}

function mintToken({ persona, appId = APP_ID, scopes = ['email', 'public_profile'], expired = false }) {
  const token = `EAA${alnum(8)}ZD${alnum(140)}`;
  const issuedAt = now() - (expired ? 7200 : 0);
  state.tokens.set(token, { persona, appId, scopes, issuedAt, expiresAt: expired ? now() - 3600 : now() + 5183944 });
  return token;
}

// ---- Facebook Login dialog -------------------------------------------------------
function dialog(res, q) {
  state.stats.dialog_calls += 1;
  // auth_type=reauthenticate: Facebook asks for the password again, unconditionally (the stand-in
  // has no password to ask for; it counts the request so tests can see the gateway made it)
  if (String(q.get('auth_type') || '').split(',').includes('reauthenticate')) state.stats.reauthenticate_dialogs += 1;
  const refuse = (msg) => sendText(res, 400, `<!doctype html><title>Error</title><h1>Something went wrong</h1><p>${msg}</p>\n`, 'text/html; charset=utf-8');
  const clientId = q.get('client_id');
  const redirectUri = q.get('redirect_uri');
  if (!clientId) return refuse('The parameter app_id is required');
  if (clientId !== APP_ID) return refuse('Invalid App ID: the provided app ID does not look like a valid app ID.');
  if (!redirectUri) return refuse('The parameter redirect_uri is required');
  if (!redirectUris.has(redirectUri)) {
    return refuse("URL Blocked: This redirect failed because the redirect URI is not whitelisted in the app's Client OAuth Settings.");
  }
  const responseType = q.get('response_type') ?? 'code';
  if (responseType !== 'code') return refuse('response_type must be code');
  const personaId = q.get('persona') ?? firstPersona;
  if (!personas.has(personaId)) return refuse(`unknown persona ${personaId}`);

  const to = new URL(redirectUri);
  if (state.mode === 'deny') { // the user pressed "Cancel"
    to.searchParams.set('error', 'access_denied');
    to.searchParams.set('error_code', '200');
    to.searchParams.set('error_description', 'Permissions error');
    to.searchParams.set('error_reason', 'user_denied');
  } else {
    const granted = new Set(['public_profile', ...parseScopes(q.get('scope'))]
      .filter((s) => s === 'public_profile' || (s === 'email' && personas.get(personaId).email)));
    const code = `AQ${alnum(200)}`;
    state.codes.set(code, { persona: personaId, redirectUri, scopes: [...granted], expires: Date.now() + 600_000 });
    to.searchParams.set('code', code);
  }
  if (q.has('state')) to.searchParams.set('state', q.get('state'));
  to.hash = '_=_';
  res.writeHead(302, { Location: to.toString(), 'Content-Length': 0, 'Cache-Control': 'private, no-cache, no-store, must-revalidate' });
  return res.end();
}

// ---- Graph API -------------------------------------------------------------------
function hang(req, res) {
  const s = req.socket;
  s.setTimeout(0);
  state.hung.add(s);
  s.on('close', () => state.hung.delete(s));
  res.on('error', () => {});
}

async function accessToken(req, res, q) {
  state.stats.access_token_calls += 1;
  if (state.mode === 'hang') return hang(req, res);
  if (state.mode === 'html') {
    return sendText(res, 200, '<!DOCTYPE html><html><head><title>Facebook</title></head><body><h1>Sorry, something went wrong.</h1></body></html>\n', 'text/html; charset=utf-8');
  }
  let p = q;
  if (req.method === 'POST') {
    const ctype = String(req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
    const raw = await readBody(req);
    if (ctype === 'application/x-www-form-urlencoded') p = new URLSearchParams([...q, ...new URLSearchParams(raw)]);
    else if (raw.length) return graphError(res, 400, { message: 'Unsupported request body', code: 100 });
  }
  for (const k of ['client_id', 'redirect_uri', 'client_secret', 'code']) {
    if (p.getAll(k).length > 1) return graphError(res, 400, { message: `Duplicate ${k} parameter.`, code: 100 });
  }
  const clientId = p.get('client_id');
  if (!clientId) return graphError(res, 400, { message: 'Missing client_id parameter.', code: 100 });
  if (clientId !== APP_ID) return graphError(res, 400, { message: 'Error validating application. Invalid application ID.', code: 100 });
  const secret = p.get('client_secret');
  if (!secret) return graphError(res, 400, { message: 'Missing client_secret parameter.', code: 100 });
  if (!safeEqual(secret, APP_SECRET)) return graphError(res, 400, { message: 'Error validating client secret.', code: 100 });
  const redirectUri = p.get('redirect_uri');
  if (!redirectUri) return graphError(res, 400, { message: 'Missing redirect_uri parameter.', code: 100 });
  const code = p.get('code');
  if (!code) return graphError(res, 400, { message: 'Missing code parameter.', code: 100 });
  const grant = state.codes.get(code);
  if (!grant) {
    return graphError(res, 400, code.startsWith('AQ') && code.length === 202
      ? { message: 'This authorization code has been used.', code: 100, subcode: 36009 }
      : { message: 'Invalid verification code format.', code: 100, subcode: 36007 });
  }
  state.codes.delete(code); // single use, whatever happens next
  if (grant.expires < Date.now()) return graphError(res, 400, { message: 'This authorization code has expired.', code: 100, subcode: 36007 });
  if (redirectUri !== grant.redirectUri) {
    return graphError(res, 400, {
      message: 'Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request',
      code: 100, subcode: 36008,
    });
  }
  const token = mintToken({ persona: grant.persona, scopes: grant.scopes });
  return sendJson(res, 200, { access_token: token, token_type: 'bearer', expires_in: 5183944 });
}

function userToken(req, q) {
  const fromQuery = q.get('access_token');
  const m = /^(?:Bearer|OAuth) (\S+)$/i.exec(String(req.headers.authorization || '').trim());
  return fromQuery || (m ? m[1] : null);
}

// Common checks for /me and /me/permissions. Returns the token record or null (answered).
function checkUserCall(req, res, q) {
  const token = userToken(req, q);
  if (!token) {
    graphError(res, 400, { message: 'An active access token must be used to query information about the current user.', code: 2500 });
    return null;
  }
  const t = state.tokens.get(token);
  if (!t) {
    graphError(res, 400, { message: 'Invalid OAuth access token - Cannot parse access token', code: 190 });
    return null;
  }
  if (t.expiresAt <= now()) {
    graphError(res, 400, {
      message: `Error validating access token: Session has expired on ${new Date(t.expiresAt * 1000).toUTCString()}. The current time is ${new Date().toUTCString()}.`,
      code: 190, subcode: 463,
    });
    return null;
  }
  const secret = t.appId === APP_ID ? APP_SECRET : OTHER_APP_SECRET;
  const expected = crypto.createHmac('sha256', secret).update(token).digest('hex');
  const proof = q.get('appsecret_proof');
  if (!proof || !safeEqual(proof, expected)) {
    state.stats.proof_failures += 1;
    graphError(res, 400, { message: 'Invalid appsecret_proof provided in the API argument', type: 'GraphMethodException', code: 100 });
    return null;
  }
  return t;
}

const USER_FIELDS = new Set(['id', 'name', 'email', 'picture', 'first_name', 'last_name', 'short_name']);

function me(req, res, q) {
  state.stats.me_calls += 1;
  const t = checkUserCall(req, res, q);
  if (!t) return undefined;
  const p = personas.get(t.persona);
  // "picture.type(large)", "picture{url}" -> "picture"
  const fields = (q.get('fields') ? q.get('fields').split(',') : ['id', 'name'])
    .map((f) => f.trim().split(/[.{]/)[0]).filter(Boolean);
  for (const f of fields) {
    if (!USER_FIELDS.has(f)) {
      return graphError(res, 400, { message: `(#100) Tried accessing nonexisting field (${f}) on node type (User)`, code: 100 });
    }
  }
  const [first, ...rest] = p.name.split(' ');
  const out = {};
  for (const f of fields) {
    switch (f) {
      case 'id': out.id = p.id; break;
      case 'name': out.name = p.name; break;
      case 'first_name': out.first_name = first; break;
      case 'last_name': if (rest.length) out.last_name = rest.join(' '); break;
      case 'short_name': out.short_name = first; break;
      case 'email': if (p.email && t.scopes.includes('email')) out.email = p.email; break;
      case 'picture':
        out.picture = { data: { height: 50, is_silhouette: false, url: `${BASE}/picture/${p.id}.png`, width: 50 } };
        break;
      default: break;
    }
  }
  if (!('id' in out)) out.id = p.id; // Graph always answers the node id
  return sendJson(res, 200, out);
}

function permissions(req, res, q) {
  state.stats.permissions_calls += 1;
  const t = checkUserCall(req, res, q);
  if (!t) return undefined;
  const data = ['public_profile', 'email'].map((permission) => ({
    permission, status: t.scopes.includes(permission) ? 'granted' : 'declined',
  }));
  return sendJson(res, 200, { data });
}

function debugToken(req, res, q) {
  state.stats.debug_token_calls += 1;
  const m = /^(?:Bearer|OAuth) (\S+)$/i.exec(String(req.headers.authorization || '').trim());
  const appToken = q.get('access_token') || (m ? m[1] : null);
  if (!appToken) return graphError(res, 400, { message: 'An access token is required to request this resource.', code: 104 });
  if (!safeEqual(appToken, `${APP_ID}|${APP_SECRET}`)) {
    return graphError(res, 400, { message: 'Invalid OAuth access token signature.', code: 190 });
  }
  const input = q.get('input_token');
  if (!input) return graphError(res, 400, { message: '(#100) The parameter input_token is required', code: 100 });
  const t = state.tokens.get(input);
  if (!t) {
    return sendJson(res, 200, { data: { error: { code: 190, message: 'Invalid OAuth access token.' }, is_valid: false, scopes: [] } });
  }
  const valid = t.expiresAt > now();
  return sendJson(res, 200, {
    data: {
      app_id: t.appId,
      type: 'USER',
      application: t.appId === APP_ID ? APP_NAME : 'Some Other App',
      data_access_expires_at: t.issuedAt + 90 * 86400,
      ...(valid ? {} : {
        error: { code: 190, message: `Error validating access token: Session has expired on ${new Date(t.expiresAt * 1000).toUTCString()}.`, subcode: 463 },
      }),
      expires_at: t.expiresAt,
      is_valid: valid,
      issued_at: t.issuedAt,
      scopes: t.scopes,
      user_id: t.persona,
    },
  });
}

// ---- admin ---------------------------------------------------------------------------
async function admin(req, res, path) {
  if (req.method === 'GET' && path === '/admin/stats') return sendJson(res, 200, { ...state.stats, mode: state.mode });
  if (req.method !== 'POST') return sendJson(res, 405, { error: 'method not allowed' });
  const raw = await readBody(req);
  let body = {};
  if (raw.trim()) {
    try { body = JSON.parse(raw); } catch { return sendJson(res, 400, { error: 'body is not JSON' }); }
  }
  switch (path) {
    case '/admin/token': {
      state.stats.admin_token_calls += 1;
      const persona = body.persona === undefined ? firstPersona : String(body.persona);
      if (!personas.has(persona)) return sendJson(res, 400, { error: `unknown persona ${persona}` });
      const scopes = Array.isArray(body.scopes) ? body.scopes.map(String)
        : ['public_profile', ...(personas.get(persona).email ? ['email'] : [])];
      const appId = body.app_id === undefined ? APP_ID : String(body.app_id);
      const token = mintToken({ persona, appId, scopes, expired: body.expired === true });
      return sendJson(res, 200, { access_token: token, token_type: 'bearer', app_id: appId, user_id: persona });
    }
    case '/admin/signed-request': {
      // Facebook's signed_request (data-deletion callback): base64url(HMAC-SHA256(app_secret,
      // payload_b64)) "." payload_b64; {"bad_signature": true} breaks the signature,
      // {"algorithm": "..."} overrides the algorithm field, {"issued_at": X} the issue time (any
      // JSON value; null leaves it out), {"user_id": X} the user (any JSON value but a number).
      const persona = body.user_id === undefined ? firstPersona
        : typeof body.user_id === 'number' ? String(body.user_id) : body.user_id;
      const fields = { algorithm: body.algorithm ?? 'HMAC-SHA256', expires: 0, issued_at: now(), user_id: persona };
      if ('issued_at' in body) fields.issued_at = body.issued_at ?? undefined;
      const payload = Buffer.from(JSON.stringify(fields)).toString('base64url');
      const sig = crypto.createHmac('sha256', body.bad_signature === true ? `${APP_SECRET}x` : APP_SECRET)
        .update(payload).digest('base64url');
      return sendJson(res, 200, { signed_request: `${sig}.${payload}`, user_id: persona });
    }
    case '/admin/mode':
      if (!['good', 'hang', 'html', 'deny'].includes(body.mode)) {
        return sendJson(res, 400, { error: `unknown mode ${JSON.stringify(body.mode)}`, modes: ['good', 'hang', 'html', 'deny'] });
      }
      state.mode = body.mode;
      return sendJson(res, 200, { mode: state.mode });
    case '/admin/reset':
      state.mode = 'good';
      state.codes.clear();
      state.tokens.clear();
      for (const s of state.hung) s.destroy();
      resetStats();
      return sendJson(res, 200, { mode: state.mode });
    default:
      return sendJson(res, 404, { error: 'not found' });
  }
}

async function handle(req, res) {
  const url = new URL(req.url, BASE);
  const path = url.pathname;
  const q = url.searchParams;
  if (path.startsWith('/admin/')) return admin(req, res, path);
  if (req.method === 'GET' && /^\/picture\/[0-9]+\.png$/.test(path)) {
    res.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': PIXEL_PNG.length });
    return res.end(PIXEL_PNG);
  }
  const m = /^\/(v\d+\.\d+)(\/.*)$/.exec(path);
  if (!m || m[1] !== VERSION) {
    return graphError(res, 400, { message: `Unknown path components: ${path}`, code: 2500 });
  }
  const rest = m[2].replace(/\/+$/, '');
  res.setHeader('facebook-api-version', VERSION);
  if (rest === '/dialog/oauth' && req.method === 'GET') return dialog(res, q);
  if (rest === '/oauth/access_token' && (req.method === 'GET' || req.method === 'POST')) return accessToken(req, res, q);
  if (req.method !== 'GET') return graphError(res, 400, { message: 'Unsupported method', code: 100 });
  if (rest === '/me') return me(req, res, q);
  if (rest === '/me/permissions') return permissions(req, res, q);
  if (rest === '/debug_token') return debugToken(req, res, q);
  return graphError(res, 400, { message: `Unknown path components: ${rest}`, code: 2500 });
}

const server = http.createServer((req, res) => {
  res.on('finish', () => log(req, res.statusCode));
  handle(req, res).catch((e) => {
    if (!res.headersSent) graphError(res, e.status || 500, { message: String(e.message || e), code: 1 });
  });
});
server.requestTimeout = 0; // the hang mode relies on sockets staying open
server.headersTimeout = 60_000;
server.keepAliveTimeout = 5_000;

listen(server, opts.port, (port) => {
  BASE = `http://127.0.0.1:${port}`;
});
