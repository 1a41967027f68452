#!/usr/bin/env node
// google-op: panva's certified OpenID Provider (npm `oidc-provider`, pinned to
// 8.8.1 in package.json) configured to look like Google's sign-in, for
// journeygate's integration and browser tests.
//
//   node google-op.mjs --port 0 --client-id test-client --client-secret test-secret \
//        --redirect-uri http://127.0.0.1:8080/.auth/login/google/callback \
//        [--redirect-uri ...] [--extra-client ID:SECRET]... [--hd-domain D]... \
//        [--key-file PATH] [--dev-interactions] [--verbose]
//
// Prints `READY <port>` on stdout when listening; issuer is http://127.0.0.1:<port>
// (discovery at /.well-known/openid-configuration; authorize /auth, token
// /token, JWKS /jwks, userinfo /me).
//
// What it does:
//   - authorization code flow only; PKCE with S256 is REQUIRED (`plain` refused);
//   - automatic interaction: the user named by `login_hint` (an email, default
//     alice@example.com) is signed in and consent is granted, with no page to
//     fill in, so a curl cookie jar or headless Chromium completes the flow;
//     `--dev-interactions` uses the provider's own HTML login/consent pages;
//   - RS256 ID tokens (kid "google-op-rs256") with sub, email, email_verified,
//     name, given_name, family_name, picture, nonce, azp, at_hash, and `hd` when
//     the email's domain was given with --hd-domain;
//   - sub is stable per email (a hash; Google-like decimal string), and
//     email_verified is false when the email's local part contains "unverified".
//
// Pitfalls (measured on this machine with oidc-provider 8.8.1; see
// /work/shared/TESTING.md):
//   - Without `conformIdTokenClaims: false` a code-flow ID token carries only `sub`
//     (email and name would only come from userinfo). Google puts them in the ID
//     token, so it is set below.
//   - Use a fresh cookie jar (browser context) per user: the OP keeps a `_session`
//     cookie, and plain oidc-provider reuses that session whatever the new
//     login_hint says (silently returning the previous user). This peer adds a
//     `login_hint_mismatch` check that forces a new sign-in when login_hint names
//     someone else, but a fresh jar per user is still the honest way to write a test.
//   - Cookies are not separated by port: the OP's `_session`, `_session.legacy`,
//     `_interaction`, `_interaction_resume` cookies (and their `.sig` twins) set
//     for 127.0.0.1 are ALSO sent to the gateway on 127.0.0.1. The gateway must
//     ignore cookies that are not its own.
//   - The signing key is regenerated at every start (same kid!), so a test that
//     restarts the OP must not expect old tokens to verify — unless it passes
//     `--key-file PATH` (created on first start, reused afterwards).
//   - The callback carries `iss=<issuer>` (RFC 9207) besides code and state.
//   - An unregistered redirect_uri gets an HTML 400 page (no redirect).
//   - It accepts client_secret_basic AND client_secret_post for a client whatever
//     token_endpoint_auth_method it is registered with.
//   - oidc-provider prints NOTICEs with console.info (stdout): stdout is redirected
//     to stderr here so that stdout holds only the READY line.
//   - Unknown authorization parameters (Google's access_type, include_granted_scopes,
//     hd) are ignored, not refused.
//   - Start-up takes about 0.5 s; one full code flow with curl about 0.2 s.
import fs from 'node:fs';
import http from 'node:http';
import crypto from 'node:crypto';
import Provider, { interactionPolicy } from 'oidc-provider';
import {
  quietStdout, parseCli, listen, die, subFor, nameFor, emailDomain, PIXEL_PNG, verboseLogger,
} from './common.mjs';

const PROG = 'google-op';
const USAGE = `usage: node google-op.mjs --port N --client-id ID --client-secret S --redirect-uri URI
         [--redirect-uri URI | a,b,c]... [--extra-client ID:SECRET]... [--hd-domain D]...
         [--key-file PATH] [--dev-interactions] [--verbose]`;

quietStdout();
const opts = parseCli(PROG, {
  port: { type: 'string' },
  'client-id': { type: 'string', default: 'test-client' },
  'client-secret': { type: 'string', default: 'test-secret' },
  'redirect-uri': { type: 'string', multiple: true, default: [] },
  'extra-client': { type: 'string', multiple: true, default: [] },
  'hd-domain': { type: 'string', multiple: true, default: [] },
  'key-file': { type: 'string' },
  'dev-interactions': { type: 'boolean', default: false },
  verbose: { type: 'boolean', default: false },
}, USAGE);

if (opts['redirect-uri'].length === 0) die(PROG, `at least one --redirect-uri is needed\n${USAGE}`);
for (const u of opts['redirect-uri']) {
  try { new URL(u); } catch { die(PROG, `bad --redirect-uri: ${u}`); }
}
const hdDomains = new Set(opts['hd-domain'].map((d) => d.toLowerCase()));
const DEV = opts['dev-interactions'];
const log = verboseLogger(opts.verbose, PROG);

const clientSpecs = [[opts['client-id'], opts['client-secret']]];
for (const spec of opts['extra-client']) {
  const i = spec.indexOf(':');
  if (i <= 0 || i === spec.length - 1) die(PROG, `--extra-client wants ID:SECRET, got ${spec}`);
  clientSpecs.push([spec.slice(0, i), spec.slice(i + 1)]);
}

// The signing key: fresh per start, or persisted in --key-file.
function loadKey() {
  const file = opts['key-file'];
  if (file && fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8'));
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'google-op-rs256', alg: 'RS256', use: 'sig' };
  if (file) fs.writeFileSync(file, JSON.stringify(jwk), { mode: 0o600 });
  return jwk;
}
const signingJwk = loadKey();

let ISSUER; // set once the port is known

function profileFor(email) {
  const name = nameFor(email);
  const [given, ...rest] = name.split(' ');
  const sub = subFor(email);
  const local = email.split('@')[0].toLowerCase();
  const domain = emailDomain(email);
  return {
    sub,
    email,
    email_verified: !local.includes('unverified'),
    name,
    given_name: given,
    ...(rest.length ? { family_name: rest.join(' ') } : {}),
    picture: `${ISSUER}/picture/${sub}.png`,
    locale: 'en',
    ...(hdDomains.has(domain) ? { hd: domain } : {}),
  };
}

const accounts = new Map(); // sub -> email, filled from login_hint
function accountFor(email) {
  const sub = subFor(email);
  accounts.set(sub, email);
  return sub;
}
const hintedEmail = (params) => (params.login_hint && params.login_hint.includes('@')
  ? params.login_hint : 'alice@example.com');

function buildProvider() {
  const policy = interactionPolicy.base();
  // Google accepts prompt=select_account: resolve it in the same automatic step.
  policy.add(new interactionPolicy.Prompt({ name: 'select_account', requestable: true }));
  // A session for alice must not answer a request whose login_hint names bob.
  policy.get('login').checks.add(new interactionPolicy.Check(
    'login_hint_mismatch',
    'login_hint names another End-User than the current session',
    (ctx) => {
      const { oidc } = ctx;
      const hint = oidc.params.login_hint;
      if (!hint || !hint.includes('@') || !oidc.session.accountId) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      return subFor(hint) === oidc.session.accountId
        ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
    },
  ));

  return new Provider(ISSUER, {
    clients: clientSpecs.map(([clientId, secret]) => ({
      client_id: clientId,
      client_secret: secret,
      redirect_uris: opts['redirect-uri'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
      // every ID token says when the person last signed in here, as Google's do: the gateway
      // counts step-up ages from it (prompt=login and max_age=0 make the automatic
      // interaction sign the person in again, with a new auth_time)
      require_auth_time: true,
    })),
    jwks: { keys: [signingJwk] },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    ttl: { AuthorizationCode: 60, IdToken: 3600, AccessToken: 3600, Interaction: 600, Session: 3600, Grant: 3600 },
    pkce: { methods: ['S256'], required: () => true },
    scopes: ['openid', 'email', 'profile'],
    claims: {
      openid: ['sub', 'azp', 'hd'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'picture', 'locale'],
    },
    conformIdTokenClaims: false, // email/name in the ID token, as Google does
    features: { devInteractions: { enabled: DEV }, userinfo: { enabled: true } },
    ...(DEV ? {} : { interactions: { policy, url: (ctx, i) => `/interaction/${i.uid}` } }),
    async findAccount(ctx, sub) {
      // devInteractions: the typed login string arrives as the account id
      const email = accounts.get(sub) ?? (sub.includes('@') ? sub : null);
      if (!email) return undefined;
      const clientId = ctx?.oidc?.client?.clientId;
      return {
        accountId: sub,
        claims: async () => ({ ...profileFor(email), sub, ...(clientId ? { azp: clientId } : {}) }),
      };
    },
    renderError(ctx, out) { // plain, small HTML error page (unregistered redirect_uri etc.)
      ctx.type = 'html';
      ctx.body = `<!doctype html><title>oops</title><h1>${out.error}</h1><p>${String(out.error_description || '').replace(/[<>&"]/g, '')}</p>`;
    },
  });
}

let provider;
let callback;

async function autoInteraction(req, res) { // login_hint user + consent in one step
  const interaction = await provider.interactionDetails(req, res);
  const { prompt, params, grantId, session } = interaction;
  const accountId = prompt.name === 'login' || !session ? accountFor(hintedEmail(params)) : session.accountId;
  if (session?.uid && session.accountId !== accountId) {
    // Switching user: plain oidc-provider would answer the resume step with an
    // auto-submitting "end session" form (fine in a browser, a dead end for curl).
    // Drop the old session first, so the switch is one redirect as for a first login.
    const old = await provider.Session.findByUid(session.uid);
    if (old) await old.destroy();
    delete interaction.session;
    await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
  }
  let grant = grantId ? await provider.Grant.find(grantId) : undefined;
  if (!grant || grant.accountId !== accountId) grant = new provider.Grant({ accountId, clientId: params.client_id });
  grant.addOIDCScope(params.scope);
  const result = { login: { accountId }, consent: { grantId: await grant.save() }, select_account: {} };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

const server = http.createServer((req, res) => {
  res.on('finish', () => log(req, res.statusCode));
  if (req.method === 'GET' && /^\/picture\/[0-9]+\.png$/.test(req.url)) {
    res.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': PIXEL_PNG.length });
    res.end(PIXEL_PNG);
    return;
  }
  if (DEV || !req.url.startsWith('/interaction/')) {
    callback(req, res);
    return;
  }
  autoInteraction(req, res).catch((e) => {
    process.stderr.write(`${PROG}: interaction failed: ${e.stack || e}\n`);
    if (!res.headersSent) {
      res.statusCode = 500;
      res.end(String(e.message || e));
    }
  });
});

listen(server, opts.port, (port) => {
  ISSUER = `http://127.0.0.1:${port}`;
  provider = buildProvider();
  provider.on('server_error', (ctx, err) => process.stderr.write(`${PROG}: server_error: ${err.stack || err}\n`));
  callback = provider.callback();
});
