#!/usr/bin/env node
// rogue-op: a small OpenID Provider in plain Node (node:http + node:crypto, no
// dependencies) whose ID tokens and endpoints can be made hostile on demand, for
// the gateway's negative tests. The "good" mode is a correct, strict OP.
//
//   node rogue-op.mjs --port 0 --client-id test-client --client-secret test-secret \
//        --redirect-uri URI [--redirect-uri URI | a,b]... [--extra-client ID:SECRET]... \
//        [--issuer X] [--hd-domain D]... [--token-auth-method M] [--verbose]
//
// --token-auth-method client_secret_basic|client_secret_post: the main client is registered with
// that method and the token endpoint refuses the other (invalid_client), as RFC 7591's
// token_endpoint_auth_method means; without it either is accepted.
//
// Prints `READY <port>` on stdout when listening. Issuer: http://127.0.0.1:<port>
// unless --issuer. Discovery is answered at /.well-known/openid-configuration and
// at ANY path ending in it (so an --issuer with a path works). Endpoint URLs in the
// discovery document always use http://127.0.0.1:<port>.
//
// Endpoints: GET /authorize, POST /token, GET /jwks, GET /userinfo,
// GET /picture/<sub>.png, and the admin API:
//   POST /admin/mode  {"mode": "..."}   how the NEXT ID tokens / endpoint answers are made;
//                                       stays until changed ("good" restores)
//   GET  /admin/stats                   {"jwks_fetches","token_calls","authorize_calls",
//                                        "discovery_fetches","userinfo_calls","mode","kid"}
//   POST /admin/reset [{"keys": true}]  mode good, counters 0, codes/tokens forgotten;
//                                       with keys:true a fresh k1 replaces every key
// See README.md for the list of modes.
import http from 'node:http';
import crypto from 'node:crypto';
import {
  quietStdout, parseCli, listen, die, subFor, nameFor, emailDomain, PIXEL_PNG, readBody,
  sendJson, sendText, safeEqual, randomToken, b64url, verboseLogger,
} from './common.mjs';

const PROG = 'rogue-op';
const USAGE = `usage: node rogue-op.mjs --port N --client-id ID --client-secret S --redirect-uri URI
         [--redirect-uri URI | a,b]... [--extra-client ID:SECRET]... [--issuer X]
         [--hd-domain D]... [--token-auth-method client_secret_basic|client_secret_post] [--verbose]`;

quietStdout();
const opts = parseCli(PROG, {
  port: { type: 'string' },
  issuer: { type: 'string' },
  'client-id': { type: 'string', default: 'test-client' },
  'client-secret': { type: 'string', default: 'test-secret' },
  'redirect-uri': { type: 'string', multiple: true, default: [] },
  'extra-client': { type: 'string', multiple: true, default: [] },
  'hd-domain': { type: 'string', multiple: true, default: [] },
  'token-auth-method': { type: 'string' },
  verbose: { type: 'boolean', default: false },
}, USAGE);
if (opts['redirect-uri'].length === 0) die(PROG, `at least one --redirect-uri is needed\n${USAGE}`);

const clients = new Map([[opts['client-id'], opts['client-secret']]]);
for (const spec of opts['extra-client']) {
  const i = spec.indexOf(':');
  if (i <= 0 || i === spec.length - 1) die(PROG, `--extra-client wants ID:SECRET, got ${spec}`);
  clients.set(spec.slice(0, i), spec.slice(i + 1));
}
const authMethod = opts['token-auth-method'];
if (authMethod !== undefined && authMethod !== 'client_secret_basic' && authMethod !== 'client_secret_post') {
  die(PROG, `--token-auth-method wants client_secret_basic or client_secret_post, got ${authMethod}`);
}
const redirectUris = new Set(opts['redirect-uri']);
const hdDomains = new Set(opts['hd-domain'].map((d) => d.toLowerCase()));
const log = verboseLogger(opts.verbose, PROG);

const MODES = new Set([
  'good', 'bad_signature', 'alg_none', 'hs256_pubkey', 'ps256', 'rs512', 'wrong_iss', 'wrong_aud',
  'multi_aud_no_azp', 'multi_aud_wrong_azp', 'wrong_nonce', 'expired', 'nbf_future', 'iat_future',
  'no_exp', 'unknown_kid', 'rotate', 'hang_token', 'html_token', 'huge_token', 'hang_jwks',
  'missing_email', 'unverified_email', 'hd_other', 'wrong_discovery_issuer', 'stale_auth_time', 'no_auth_time',
  'sub_cr', 'sub_lf', 'sub_nul', 'sub_too_long', 'email_crlf', 'email_malformed', 'name_ctl', 'name_c1',
  'hd_malformed', 'crit', 'crit_malformed',
]);
const WRONG_ISSUER = 'https://evil.example';
const OTHER_AUD = 'other-client';

// ---- state -------------------------------------------------------------------
let BASE; // http://127.0.0.1:<port>
let ISSUER;
const newKey = (kid) => ({ kid, ...crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }) });
const state = {
  mode: 'good',
  signing: newKey('k1'), // the key tokens are signed with in the good modes
  published: null, // keys served at /jwks
  unknown: null, // "k-unknown", made lazily, never published
  codes: new Map(), // code -> {clientId, redirectUri, challenge, nonce, email, expires}
  tokens: new Map(), // access token -> {claims, expires}
  stats: null,
  hung: new Set(), // sockets kept open by hang_* modes
  authAt: new Map(), // email -> when that person last authenticated here (s): the OP's own session
};
state.published = [state.signing];
function resetStats() {
  state.stats = { jwks_fetches: 0, token_calls: 0, authorize_calls: 0, discovery_fetches: 0, userinfo_calls: 0 };
}
resetStats();

const publicJwk = (k) => ({
  ...k.publicKey.export({ format: 'jwk' }), kid: k.kid, alg: 'RS256', use: 'sig',
});

// ---- JWT making ----------------------------------------------------------------
function signJwt(header, payload, signer) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  return `${input}.${b64url(signer(Buffer.from(input)))}`;
}
const rsa = (key, hash) => (data) => crypto.sign(hash, data, key);
const pss = (key) => (data) => crypto.sign('sha256', data, {
  key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32,
});

function userClaims(email, mode) {
  const sub = subFor(email);
  const domain = emailDomain(email);
  const c = { sub };
  if (mode !== 'missing_email') {
    c.email = email;
    c.email_verified = mode !== 'unverified_email';
  }
  c.name = nameFor(email);
  c.picture = `${BASE}/picture/${sub}.png`;
  if (mode === 'hd_other') c.hd = 'other.example';
  else if (hdDomains.has(domain)) c.hd = domain;
  // claims a hostile OP fills with what must never reach a header, a log, the store or a page
  switch (mode) {
    case 'sub_cr': c.sub = `${sub}\rX-Injected: 1`; break;
    case 'sub_lf': c.sub = `${sub}\nX-Injected: 1`; break;
    case 'sub_nul': c.sub = `${sub}\u0000admin`; break;
    case 'sub_too_long': c.sub = '1'.repeat(256); break;
    case 'email_crlf': c.email = `${email}\r\nX-Injected: 1`; break;
    case 'email_malformed': c.email = `${email}@evil.example`; break;
    case 'name_ctl': c.name = `${c.name}\r\nX-Injected: 1`; break;
    case 'name_c1': c.name = `${c.name}\u0085next line`; break;
    case 'hd_malformed': c.hd = `${domain}\nx`; break;
    default: break;
  }
  return c;
}

function makeIdToken({ clientId, nonce, email, authTime }, mode) {
  const now = Math.floor(Date.now() / 1000);
  const p = {
    iss: ISSUER, ...userClaims(email, mode), aud: clientId, azp: clientId, exp: now + 300, iat: now,
  };
  if (authTime !== undefined && mode !== 'no_auth_time') p.auth_time = authTime;
  if (nonce !== undefined) p.nonce = nonce;
  switch (mode) {
    case 'wrong_iss': p.iss = WRONG_ISSUER; break;
    case 'wrong_aud': p.aud = OTHER_AUD; p.azp = OTHER_AUD; break;
    case 'multi_aud_no_azp': p.aud = [clientId, 'other']; delete p.azp; break;
    case 'multi_aud_wrong_azp': p.aud = [clientId, 'other']; p.azp = 'other'; break;
    case 'wrong_nonce': p.nonce = randomToken('', 12); break;
    case 'expired': p.exp = now - 600; p.iat = now - 900; break;
    case 'nbf_future': p.nbf = now + 600; break;
    case 'iat_future': p.iat = now + 600; break;
    case 'no_exp': delete p.exp; break;
    default: break;
  }
  // canonical claim order, for readable dumps
  const order = ['iss', 'azp', 'aud', 'sub', 'hd', 'email', 'email_verified', 'nonce', 'name', 'picture', 'auth_time', 'iat', 'nbf', 'exp'];
  const payload = Object.fromEntries(order.filter((k) => k in p).map((k) => [k, p[k]]));

  const k = state.signing;
  switch (mode) {
    case 'bad_signature': {
      const [h, b, s] = signJwt({ alg: 'RS256', kid: k.kid, typ: 'JWT' }, payload, rsa(k.privateKey, 'sha256')).split('.');
      const sig = Buffer.from(s, 'base64url');
      sig[Math.floor(sig.length / 2)] ^= 0x01;
      return `${h}.${b}.${b64url(sig)}`;
    }
    case 'alg_none': // kid k1 kept, so a verifier that picks the key by kid and the alg from the header is caught
      return signJwt({ alg: 'none', kid: k.kid, typ: 'JWT' }, payload, () => Buffer.alloc(0));
    case 'hs256_pubkey': {
      const pem = k.publicKey.export({ type: 'spki', format: 'pem' });
      return signJwt({ alg: 'HS256', kid: k.kid, typ: 'JWT' }, payload,
        (data) => crypto.createHmac('sha256', pem).update(data).digest());
    }
    case 'ps256':
      return signJwt({ alg: 'PS256', kid: k.kid, typ: 'JWT' }, payload, pss(k.privateKey));
    case 'rs512':
      return signJwt({ alg: 'RS512', kid: k.kid, typ: 'JWT' }, payload, rsa(k.privateKey, 'sha512'));
    case 'crit': // RFC 7515 4.1.11: an extension the recipient cannot understand, marked critical
      return signJwt({ alg: 'RS256', kid: k.kid, typ: 'JWT', crit: ['urn:example:must-understand'], 'urn:example:must-understand': true },
        payload, rsa(k.privateKey, 'sha256'));
    case 'crit_malformed': // crit must be a non-empty array of names: here a bare string
      return signJwt({ alg: 'RS256', kid: k.kid, typ: 'JWT', crit: 'exp' }, payload, rsa(k.privateKey, 'sha256'));
    case 'unknown_kid': {
      state.unknown ??= newKey('k-unknown');
      return signJwt({ alg: 'RS256', kid: state.unknown.kid, typ: 'JWT' }, payload, rsa(state.unknown.privateKey, 'sha256'));
    }
    default:
      return signJwt({ alg: 'RS256', kid: k.kid, typ: 'JWT' }, payload, rsa(k.privateKey, 'sha256'));
  }
}

function setMode(mode) {
  state.mode = mode;
  if (mode === 'rotate' && state.signing.kid !== 'k2') {
    // a new key k2; from now on ONLY k2 is published and every token is signed with it
    state.signing = newKey('k2');
    state.published = [state.signing];
  }
}

// ---- endpoints ---------------------------------------------------------------
function discovery(res) {
  state.stats.discovery_fetches += 1;
  sendJson(res, 200, {
    issuer: state.mode === 'wrong_discovery_issuer' ? WRONG_ISSUER : ISSUER,
    authorization_endpoint: `${BASE}/authorize`,
    token_endpoint: `${BASE}/token`,
    jwks_uri: `${BASE}/jwks`,
    userinfo_endpoint: `${BASE}/userinfo`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    scopes_supported: ['openid', 'email', 'profile'],
    grant_types_supported: ['authorization_code'],
    claims_supported: ['iss', 'sub', 'aud', 'azp', 'exp', 'iat', 'auth_time', 'nonce', 'email', 'email_verified', 'name', 'picture', 'hd'],
    authorization_response_iss_parameter_supported: true,
  });
}

function authorize(res, q) {
  state.stats.authorize_calls += 1;
  const p = Object.fromEntries(q);
  const refuse = (msg) => sendText(res, 400, `400 Bad Request: ${msg}\n`);
  if (!p.client_id || !clients.has(p.client_id)) return refuse('unknown client_id');
  if (!p.redirect_uri || !redirectUris.has(p.redirect_uri)) return refuse('redirect_uri not registered');
  if (p.response_type !== 'code') return refuse('response_type must be code');
  if (!p.code_challenge) return refuse('code_challenge required (PKCE)');
  if (p.code_challenge_method !== 'S256') return refuse('code_challenge_method must be S256');
  if (!/^[A-Za-z0-9_-]{43}$/.test(p.code_challenge)) return refuse('code_challenge is not a base64url SHA-256');
  if (!String(p.scope || '').split(' ').includes('openid')) return refuse('scope must include openid');
  const email = p.login_hint && p.login_hint.includes('@') ? p.login_hint : 'alice@example.com';
  // The OP's own session: the person authenticates again only when asked to (prompt=login, or a
  // max_age the last authentication is older than) or the first time. stale_auth_time ignores
  // the asking and reports a sign-in an hour old, as an OP that silently reuses its session would.
  const now = Math.floor(Date.now() / 1000);
  const last = state.authAt.get(email);
  const asked = String(p.prompt || '').split(' ').includes('login')
    || (p.max_age !== undefined && (last === undefined || now - last > Number(p.max_age)));
  let authTime = last === undefined || asked ? now : last;
  if (state.mode === 'stale_auth_time') authTime = now - 3600;
  else state.authAt.set(email, authTime);
  const code = randomToken('c.', 24);
  state.codes.set(code, {
    clientId: p.client_id, redirectUri: p.redirect_uri, challenge: p.code_challenge,
    nonce: p.nonce, email, authTime, expires: Date.now() + 60_000,
  });
  const to = new URL(p.redirect_uri);
  to.searchParams.set('code', code);
  if (p.state !== undefined) to.searchParams.set('state', p.state);
  to.searchParams.set('iss', ISSUER);
  res.writeHead(302, { Location: to.toString(), 'Content-Length': 0, 'Cache-Control': 'no-store' });
  return res.end();
}

function hang(req, res) {
  // Never answer; keep the socket open until the client gives up (or we exit).
  const s = req.socket;
  s.setTimeout(0);
  state.hung.add(s);
  s.on('close', () => state.hung.delete(s));
  res.on('error', () => {});
}

async function token(req, res) {
  state.stats.token_calls += 1;
  const mode = state.mode;
  if (mode === 'hang_token') return hang(req, res);
  if (mode === 'html_token') {
    return sendText(res, 200, '<!doctype html><html><head><title>Sign in</title></head><body><h1>Please sign in</h1></body></html>\n', 'text/html; charset=utf-8');
  }
  const oauthError = (status, error, description, headers) => sendJson(res, status, { error, error_description: description }, headers);
  const ctype = String(req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  const raw = await readBody(req);
  if (ctype !== 'application/x-www-form-urlencoded') return oauthError(400, 'invalid_request', 'body must be application/x-www-form-urlencoded');
  const form = new URLSearchParams(raw);
  for (const k of new Set(form.keys())) {
    if (form.getAll(k).length > 1) return oauthError(400, 'invalid_request', `parameter ${k} repeated`);
  }

  // client authentication: client_secret_basic OR client_secret_post (not both)
  let clientId;
  let secret;
  let basic = false;
  const auth = req.headers.authorization;
  if (auth) {
    const m = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(auth.trim());
    if (!m) return oauthError(401, 'invalid_client', 'unsupported Authorization scheme', { 'WWW-Authenticate': 'Basic realm="rogue-op"' });
    const dec = Buffer.from(m[1], 'base64').toString('utf8');
    const i = dec.indexOf(':');
    if (i < 0) return oauthError(401, 'invalid_client', 'malformed Basic credentials', { 'WWW-Authenticate': 'Basic realm="rogue-op"' });
    try { // RFC 6749 2.3.1: both parts are form-urlencoded
      clientId = decodeURIComponent(dec.slice(0, i).replace(/\+/g, ' '));
      secret = decodeURIComponent(dec.slice(i + 1).replace(/\+/g, ' '));
    } catch {
      return oauthError(401, 'invalid_client', 'malformed Basic credentials', { 'WWW-Authenticate': 'Basic realm="rogue-op"' });
    }
    basic = true;
    if (form.has('client_secret')) return oauthError(400, 'invalid_request', 'more than one client authentication method');
    if (form.has('client_id') && form.get('client_id') !== clientId) return oauthError(400, 'invalid_request', 'client_id does not match the authenticated client');
  } else {
    clientId = form.get('client_id');
    secret = form.get('client_secret');
    if (!clientId || !secret) return oauthError(401, 'invalid_client', 'client authentication required', { 'WWW-Authenticate': 'Basic realm="rogue-op"' });
  }
  if (!clients.has(clientId) || !safeEqual(clients.get(clientId), secret)) {
    return oauthError(401, 'invalid_client', 'client authentication failed', basic ? { 'WWW-Authenticate': 'Basic realm="rogue-op"' } : {});
  }
  if (authMethod !== undefined && clientId === opts['client-id'] && (basic ? 'client_secret_basic' : 'client_secret_post') !== authMethod) {
    return oauthError(401, 'invalid_client', `the client is registered with ${authMethod}`, basic ? { 'WWW-Authenticate': 'Basic realm="rogue-op"' } : {});
  }

  if (form.get('grant_type') !== 'authorization_code') return oauthError(400, 'unsupported_grant_type', 'only authorization_code');
  const code = form.get('code');
  const grant = code ? state.codes.get(code) : undefined;
  if (grant) state.codes.delete(code); // single use, whatever happens next
  if (!grant || grant.expires < Date.now()) return oauthError(400, 'invalid_grant', 'unknown, used or expired code');
  if (grant.clientId !== clientId) return oauthError(400, 'invalid_grant', 'code was issued to another client');
  if (form.get('redirect_uri') !== grant.redirectUri) return oauthError(400, 'invalid_grant', 'redirect_uri does not match the authorization request');
  const verifier = form.get('code_verifier');
  if (!verifier) return oauthError(400, 'invalid_grant', 'code_verifier required');
  if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier)) return oauthError(400, 'invalid_grant', 'malformed code_verifier');
  const computed = crypto.createHash('sha256').update(verifier).digest('base64url');
  if (!safeEqual(computed, grant.challenge)) return oauthError(400, 'invalid_grant', 'PKCE verification failed');

  const idToken = makeIdToken(grant, mode);
  const accessToken = randomToken('at.', 24);
  state.tokens.set(accessToken, { claims: userClaims(grant.email, mode), expires: Date.now() + 300_000 });
  const answer = { access_token: accessToken, token_type: 'Bearer', expires_in: 300, scope: 'openid email profile', id_token: idToken };
  if (mode === 'huge_token') {
    // a 5 MB JSON document, valid and otherwise correct: the gateway must cap what it reads
    const filler = 5 * 1024 * 1024 - Buffer.byteLength(JSON.stringify(answer)) - ',"padding":""'.length;
    answer.padding = 'x'.repeat(Math.max(0, filler));
  }
  return sendJson(res, 200, answer, { Pragma: 'no-cache' });
}

function jwks(req, res) {
  state.stats.jwks_fetches += 1;
  if (state.mode === 'hang_jwks') return hang(req, res);
  return sendJson(res, 200, { keys: state.published.map(publicJwk) }, { 'Cache-Control': 'no-cache' });
}

function userinfo(req, res) {
  state.stats.userinfo_calls += 1;
  const m = /^Bearer (\S+)$/i.exec(String(req.headers.authorization || '').trim());
  const t = m && state.tokens.get(m[1]);
  if (!t || t.expires < Date.now()) {
    return sendJson(res, 401, { error: 'invalid_token', error_description: 'invalid or expired access token' },
      { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
  }
  return sendJson(res, 200, t.claims);
}

async function admin(req, res, path) {
  if (req.method === 'GET' && path === '/admin/stats') {
    return sendJson(res, 200, { ...state.stats, mode: state.mode, kid: state.signing.kid });
  }
  if (req.method !== 'POST') return sendJson(res, 405, { error: 'method not allowed' });
  const raw = await readBody(req);
  let body = {};
  if (raw.trim()) {
    try { body = JSON.parse(raw); } catch { return sendJson(res, 400, { error: 'body is not JSON' }); }
  }
  if (path === '/admin/mode') {
    if (!MODES.has(body.mode)) return sendJson(res, 400, { error: `unknown mode ${JSON.stringify(body.mode)}`, modes: [...MODES] });
    setMode(body.mode);
    return sendJson(res, 200, { mode: state.mode, kid: state.signing.kid });
  }
  if (path === '/admin/reset') {
    state.mode = 'good';
    resetStats();
    state.codes.clear();
    state.tokens.clear();
    state.authAt.clear();
    for (const s of state.hung) s.destroy();
    if (body.keys === true) {
      state.signing = newKey('k1');
      state.published = [state.signing];
      state.unknown = null;
    }
    return sendJson(res, 200, { mode: state.mode, kid: state.signing.kid });
  }
  return sendJson(res, 404, { error: 'not found' });
}

async function handle(req, res) {
  const url = new URL(req.url, BASE);
  const path = url.pathname;
  if (path.startsWith('/admin/')) return admin(req, res, path);
  if (req.method === 'GET' && path.endsWith('/.well-known/openid-configuration')) return discovery(res);
  if (req.method === 'GET' && path === '/authorize') return authorize(res, url.searchParams);
  if (path === '/token') {
    if (req.method !== 'POST') return sendJson(res, 405, { error: 'invalid_request', error_description: 'POST only' }, { Allow: 'POST' });
    return token(req, res);
  }
  if (req.method === 'GET' && path === '/jwks') return jwks(req, res);
  if ((req.method === 'GET' || req.method === 'POST') && path === '/userinfo') return userinfo(req, res);
  if (req.method === 'GET' && /^\/picture\/[0-9]+\.png$/.test(path)) {
    res.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': PIXEL_PNG.length });
    return res.end(PIXEL_PNG);
  }
  return sendText(res, 404, 'not found\n');
}

const server = http.createServer((req, res) => {
  res.on('finish', () => log(req, res.statusCode));
  handle(req, res).catch((e) => {
    if (!res.headersSent) sendJson(res, e.status || 500, { error: 'server_error', error_description: String(e.message || e) });
  });
});
// The hang modes rely on sockets staying open: no server-side timeouts.
server.requestTimeout = 0;
server.headersTimeout = 60_000;
server.keepAliveTimeout = 5_000;

listen(server, opts.port, (port) => {
  BASE = `http://127.0.0.1:${port}`;
  ISSUER = opts.issuer || BASE;
});
