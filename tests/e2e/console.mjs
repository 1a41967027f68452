// End to end: the console in headless Chromium (Debian's chromium, driven by playwright-core).
// Part 1 runs `journeygate demo` (300 sample customers) and signs in as its staff persona Morgan
// (every role) at the Google stand-in: every screen with real sample figures, charts drawn as SVG
// with their data-* counts, a journey paged through the real `next` cursor, CSV exports, the
// audit trail's filter chips kept in the URL, a customer's sessions revoked and an identity
// unlinked and the customer erased behind confirmations, policies explained.
// Part 2 stops the demo and serves the same store from a configuration written here, with the
// real test OP (tests/peers/rogue-op.mjs) as Google and one policy per role by email: a marketer,
// a security analyst without admin and a person with no role each see what their roles open and
// are told when they do not.
// No console error, page error or CSP violation may appear on the gateway's pages (the one
// expected 401 of `me` before signing in aside). Screenshots (1280 and 768 px wide) go to
// $JG_ARTIFACTS (default: artifacts/console beside the binary). Prints "N passed, M failed".
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from '../peers/node_modules/playwright-core/index.mjs';
import { freePort, waitFor } from './lib/net.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const JG_BIN = resolve(process.env.JG_BIN || 'build/journeygate');
const ARTIFACTS = resolve(process.env.JG_ARTIFACTS || join(dirname(JG_BIN), 'artifacts', 'console'));
const deadline = setTimeout(() => { console.error('e2e: overall timeout'); cleanup(); process.exit(1); }, 280000);
mkdirSync(ARTIFACTS, { recursive: true });


let passed = 0, failed = 0;
const check = (ok, what) => { if (ok) passed++; else { failed++; console.error(`FAIL: ${what}`); } };

const state = mkdtempSync(join(tmpdir(), 'jg-e2e-console-'));
const procs = [];
function cleanup() {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
}
function stop(p) {
  return new Promise((res) => { if (p.exitCode !== null) return res(p.exitCode); p.once('exit', (c) => res(c)); p.kill('SIGTERM'); });
}

// ---- the browser side: one context per person, every error on the gateway's pages collected

let base = '';
const problems = [];
const t0 = Date.now();
const lap = (what) => { if (process.env.E2E_VERBOSE) console.log(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`); };
async function newPerson(browser, who, width = 1280, refusedPage = false) {
  const context = await browser.newContext({ viewport: { width, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  const onGateway = () => page.url().startsWith(base);
  page.on('console', (m) => {
    if (m.type() !== 'error' || !onGateway()) return;
    // before signing in the app asks `me` and is answered 401 (API.md): the one expected error
    if (/status of 401/.test(m.text()) && /\/\.console\/api\/me$/.test(m.location().url || '')) return;
    // a person no role allows is answered the console's 403 page: the document's own status
    if (refusedPage && /status of 403/.test(m.text()) && /\/\.auth\/login\/google\/callback\?/.test(m.location().url || '')) return;
    problems.push(`${who}: console error on ${page.url()}: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => problems.push(`${who}: page error on ${page.url()}: ${e.message}`));
  return { context, page };
}
async function shot(page, name) {
  const w = page.viewportSize().width;
  await page.screenshot({ path: join(ARTIFACTS, `${name}-${w}.png`), fullPage: true });
}
/** Screenshots at 1280 and 768 px; at 768 the page must not be wider than the window. */
async function shots(page, name) {
  await shot(page, name);
  await page.setViewportSize({ width: 768, height: 900 });
  await page.waitForTimeout(300); // charts resize on the next frame
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  check(wide <= 768, `${name}: the page fits 768 px (${wide} px wide)`);
  await shot(page, name);
  await page.setViewportSize({ width: 1280, height: 900 });
}
async function view(page, testid) {
  await page.waitForSelector(`main[data-testid="${testid}"]`, { timeout: 45000 });
}
/** A chart drawn: SVG inside, data-rendered, and its data-* counts. */
async function chart(page, testid) {
  const el = page.locator(`[data-testid="${testid}"]`);
  await el.locator('svg').first().waitFor({ timeout: 45000 });
  await page.waitForSelector(`[data-testid="${testid}"][data-rendered="true"]`, { timeout: 45000 });
  const attrs = await el.evaluate((e) => Object.fromEntries(Object.entries(e.dataset)));
  const marks = await el.locator('svg path').count();
  return { ...attrs, marks };
}
/** Nothing on the screen reads NaN, undefined, null or [object Object]. */
async function noJunk(page, what) {
  const text = await page.locator('main').innerText();
  const bad = text.match(/\bNaN\b|\bundefined\b|\[object Object\]|\bnull\b/);
  check(!bad, `${what}: no ${bad ? bad[0] : ''} on screen`);
}
const num = (s) => Number(String(s).replace(/[^0-9.]/g, ''));

// ---- part 1: the demo, Morgan with every role

const [port, upPort, idpPort] = [await freePort(), await freePort(), await freePort()];
base = `http://127.0.0.1:${port}`;
const demo = spawn(JG_BIN, ['demo', '--port', `${port}`, '--upstream-port', `${upPort}`, '--idp-port', `${idpPort}`],
  { env: { ...process.env, XDG_STATE_HOME: state }, stdio: ['ignore', 'ignore', 'inherit'] });
procs.push(demo);

let browser;
try {
  await waitFor(`${base}/.console/login/google`, 20000);
  await waitFor(`${base}/.auth/login/facebook`, 20000);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'],
  });

  // a customer with live sessions and two identities, for the security screens: Ada signs in with
  // Google at the stand-in and links her Facebook account
  const ada = await newPerson(browser, 'ada');
  await ada.page.goto(`${base}/account/`);
  await ada.page.getByRole('link', { name: /Continue with Google/ }).click();
  await ada.page.click('a[data-persona="ada"]');
  await ada.page.waitForURL(`${base}/account/`);
  await ada.page.goto(`${base}/.auth/link/facebook`);
  await ada.page.click('a[data-persona="ada"]');
  await ada.page.waitForLoadState('load');
  const adaMe = await (await ada.page.request.get(`${base}/.auth/me`)).json();
  check(adaMe.customer_id && adaMe.identities?.length === 2, `ada: a customer with two identities (${JSON.stringify(adaMe).slice(0, 200)})`);

  const { page } = await newPerson(browser, 'morgan');
  // sign in: a console page sends the browser to the console's sign-in screen, back to it after
  await page.goto(`${base}/.console/overview`);
  await view(page, 'view-signin');
  check(await page.textContent('h1') === 'Sign in to the console', 'sign-in screen');
  await shots(page, 'signin');
  await page.click('[data-testid=login-google]');
  await page.click('a[data-persona="morgan"]');
  await view(page, 'view-overview');
  check(page.url() === `${base}/.console/overview`, `back on the page asked for (${page.url()})`);
  const who = await page.textContent('[data-testid=who]');
  check(/Morgan/.test(who) && /marketer/.test(who) && /security/.test(who) && /admin/.test(who), `header names Morgan and the roles (${who})`);
  check(await page.isVisible('[data-testid=demo-badge]'), 'the demo persona is labelled');
  for (const n of ['overview', 'customers', 'flows', 'inventory', 'exports', 'signins', 'policies'])
    check(await page.isVisible(`[data-testid=nav-${n}]`), `Morgan's navigation has ${n}`);

  lap('Overview');
  // Overview: the sample's figures, charts drawn
  await page.waitForSelector('[data-testid=metric-cards] li[data-metric]');
  const metric = async (k) => Number(await page.getAttribute(`li[data-metric="${k}"]`, 'data-value'));
  check(await metric('customers_seen') >= 250, `overview: customers seen from the sample (${await metric('customers_seen')})`);
  check(await metric('touchpoints') > 1000, `overview: touchpoints (${await metric('touchpoints')})`);
  const share = await metric('multi_channel_share');
  check(share > 0 && share <= 1, `overview: share known on 2+ channels in (0, 1] (${share})`);
  check(/\d+(\.\d)?%/.test(await page.textContent('li[data-metric="multi_channel_share"] .metric-value')), 'overview: the share shows as a percentage');
  const byChannel = await chart(page, 'chart-touchpoints-by-channel');
  check(byChannel.chart === 'bar' && Number(byChannel.categories) >= 4 && Number(byChannel.total) > 1000 && byChannel.marks > 3,
    `overview: touchpoints by channel drawn (${JSON.stringify(byChannel)})`);
  const byProvider = await chart(page, 'chart-signins-by-provider');
  check(Number(byProvider.total) >= 250, `overview: sign-ins by provider (${JSON.stringify(byProvider)})`);
  const byDay = await chart(page, 'chart-touchpoints-by-day');
  check(Number(byDay.categories) === 30 && /web/.test(byDay.series) && /mobile-app/.test(byDay.series), `overview: touchpoints by day (${JSON.stringify(byDay)})`);
  // the same figures as an accessible table
  const rows = await page.locator('[data-testid=chart-touchpoints-by-channel-table] tbody tr').count();
  check(rows >= 4, `overview: the channel chart's table has a row per channel (${rows})`);
  await noJunk(page, 'overview');
  await shots(page, 'overview');

  lap('Customers');
  // Customers: search by a sample customer's email (any identity's), through the labelled search box
  // the oldest sample customers have had time to go far: the first with 8 touchpoints on 2 channels
  const sample = await (await page.request.get(`${base}/.console/api/audit?event=customer_created&limit=500`)).json();
  let pick = null;
  for (const r of sample.records.filter((x) => x.customer_email?.endsWith('@sample.example')).reverse()) {
    const j = await (await page.request.get(`${base}/.console/api/customers/${r.customer_id}/journey?limit=2000`)).json();
    const channels = new Set(j.touchpoints.map((t) => t.channel));
    if (j.touchpoints.length >= 8 && channels.size >= 2) { pick = { ...r, count: j.touchpoints.length, channels: channels.size }; break; }
  }
  check(pick !== null, 'a sample customer with a multi-channel journey');
  await page.click('[data-testid=nav-customers]');
  await view(page, 'view-customers');
  const search = page.getByRole('searchbox', { name: 'Search customers' });
  await search.fill(pick.customer_email.toUpperCase()); // emails are found case-insensitively
  await search.press('Enter');
  await page.waitForSelector('[data-testid=customers-table] [data-testid=customer-link]');
  check(page.url().includes('q='), 'customers: the search is kept in the URL');
  const link = page.locator('[data-testid=customer-link]');
  check(await link.count() === 1 && await link.textContent() === pick.customer_name, `customers: one result, by name (${await link.first().textContent()})`);
  await noJunk(page, 'customers');
  await shots(page, 'customers');

  lap('Profile');
  // Profile
  await link.click();
  await view(page, 'view-profile');
  await page.waitForSelector('[data-testid=profile-summary]');
  check((await page.textContent('[data-testid=profile-summary]')).includes(pick.customer_name), 'profile: the name');
  const idRows = await page.locator('[data-testid=identities-table] tbody tr').count();
  check(idRows === 1 && /sample-\d+/.test(await page.textContent('[data-testid=identities-table]')), 'profile: the identity with its subject');
  check(await page.locator('[data-testid=channels] tbody tr').count() >= 2, 'profile: two channels or more seen');
  check(await page.locator('[data-testid=stages-reached] li[data-reached="true"]').count() >= 1, 'profile: a stage reached');
  await noJunk(page, 'profile');
  await shots(page, 'profile');

  lap('Journey, paged');
  // Journey, paged: the gateway is asked for pages of 3 (the app asks 500) and the app follows `next`
  let pages = 0;
  await page.route('**/.console/api/customers/*/journey?*', (route) => {
    pages++;
    route.continue({ url: route.request().url().replace(/limit=\d+/, 'limit=3') });
  });
  await page.click('[data-testid=journey-link]');
  await view(page, 'view-journey');
  await page.waitForSelector('[data-testid=journey-timeline][data-complete="true"]', { timeout: 60000 });
  const tl = await page.locator('[data-testid=journey-timeline]').evaluate((e) => ({ ...e.dataset }));
  check(Number(tl.count) === pick.count && pages === Math.ceil(pick.count / 3) + (pick.count % 3 === 0 ? 1 : 0),
    `journey: every touchpoint through ${pages} pages (${tl.count} of ${pick.count})`);
  check(tl.lanes.split(',').length === pick.channels, `journey: one lane per channel (${tl.lanes})`);
  check(await page.locator('li.jrow').count() === pick.count, 'journey: a row per touchpoint');
  check(await page.locator('[data-mark="visit-start"]').count() >= 1 && await page.locator('[data-mark="channel-switch"]').count() >= 1
    && await page.locator('[data-mark="stage"]').count() >= 1, 'journey: visits, channel switches and stages marked');
  check((await page.textContent('[data-testid=journey-customer]')).includes(pick.customer_name), 'journey: the customer by name');
  await page.unroute('**/.console/api/customers/*/journey?*');
  await noJunk(page, 'journey');
  await shots(page, 'journey');

  lap('Flows');
  // Flows: the Sankey, paths, funnel and stages, and a channel filter kept in the URL
  await page.click('[data-testid=nav-flows]');
  await view(page, 'view-flows');
  const tr = await chart(page, 'chart-transitions');
  check(tr.chart === 'sankey' && Number(tr.links) >= 8 && Number(tr.total) > 300, `flows: transitions Sankey (${JSON.stringify(tr)})`);
  const paths = await chart(page, 'chart-paths');
  check(Number(paths.started) >= 250 && Number(paths.nodes) >= 10, `flows: paths (${JSON.stringify(paths)})`);
  const fun = await chart(page, 'chart-funnel');
  check(fun.chart === 'funnel' && Number(fun.entered) >= 250 && Number(fun.reached) > 0 && Number(fun.reached) < Number(fun.entered),
    `flows: funnel narrows (${JSON.stringify(fun)})`);
  check(await page.locator('[data-testid=sequences-table] tbody tr').count() >= 5, 'flows: top channel sequences');
  check(await page.locator('[data-testid=stages-table] tbody tr').count() === 7, 'flows: the seven stages entered');
  check(num(await page.textContent('[data-testid=stages-table] tbody tr:first-child td')) >= 250, 'flows: customers entering "need"');
  await page.locator('[data-testid=dropoff-button]').first().click();
  await page.waitForSelector('[data-testid=next-after-dropoff] tbody tr');
  check(await page.locator('[data-testid=next-after-dropoff] tbody tr td.num').count() >= 1, 'flows: what those who stopped did next');
  await noJunk(page, 'flows');
  await shots(page, 'flows');
  const channelOptions = await page.locator('select[name=channel] option').allTextContents();
  check(channelOptions.includes('mobile-app') && channelOptions.includes('contact-centre'), `flows: the channel filter offers the recorded channels (${channelOptions})`);
  await page.selectOption('select[name=channel]', 'contact-centre');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/channel=contact-centre/);
  const trCc = await chart(page, 'chart-transitions');
  check(Number(trCc.total) > 0 && Number(trCc.total) < Number(tr.total), `flows: the contact-centre segment is smaller (${trCc.total} < ${tr.total})`);

  lap('Inventory');
  // Inventory
  await page.click('[data-testid=nav-inventory]');
  await view(page, 'view-inventory');
  await page.waitForSelector('[data-testid=inventory-ingested-table] tbody tr');
  const routesText = await page.textContent('[data-testid=inventory-routes-table]');
  check(/account/.test(routesText) && /X-Customer-Id/.test(routesText), 'inventory: routes with the identity headers sent');
  const ingested = await page.locator('[data-testid=inventory-ingested-table] tbody tr').count();
  check(ingested >= 20, `inventory: the sample's ingested touchpoints (${ingested})`);
  check(num(await page.textContent('[data-testid=inventory-ingested-table] tbody tr:first-child td:last-child')) > 0, 'inventory: volumes');
  await noJunk(page, 'inventory');
  await shots(page, 'inventory');

  lap('Exports');
  // Exports: both CSVs download, header first
  await page.click('[data-testid=nav-exports]');
  await view(page, 'view-exports');
  await shots(page, 'exports');
  for (const [testid, header] of [
    ['export-touchpoints', 'id,customer_id,occurred_at,received_at,channel,touchpoint,stage,route,method,status,device,provider,source,session,visit_id,visit_start,visitor_id,anonymous,referrer_host,utm_source,utm_medium,utm_campaign,utm_term,utm_content,click_id,attributes'],
    ['export-customers', 'id,name,email,email_verified,picture,created,first_seen,last_seen,stage,stages_reached,providers,identity_emails,channels,devices,consent,attributes']]) {
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click(`[data-testid=${testid}]`)]);
    const file = join(state, dl.suggestedFilename() || `${testid}.csv`);
    await dl.saveAs(file);
    const lines = readFileSync(file, 'utf8').split('\r\n').filter(Boolean);
    check(lines[0] === header, `${testid}: the header row (${lines[0]})`);
    check(lines.length > 250, `${testid}: the sample's rows (${lines.length - 1})`);
  }

  lap('Sign-in activity');
  // Sign-in activity: chain state, volume, failures by reason, the trail with chips kept in the URL
  await page.click('[data-testid=nav-signins]');
  await view(page, 'view-signins');
  await page.waitForSelector('[data-testid=chain-state]');
  const chain = await page.locator('[data-testid=chain-state]').evaluate((e) => ({ ...e.dataset }));
  check(chain.state === 'verified' && Number(chain.verifiedUpTo) > 300 && chain.firstBroken === '', `signins: the chain verified (${JSON.stringify(chain)})`);
  const vol = await chart(page, 'chart-volume');
  check(Number(vol.total) > 250 && vol.bucket === 'day', `signins: volume by day (${JSON.stringify(vol)})`);
  const reasons = await chart(page, 'chart-reasons');
  check(Number(reasons.categories) >= 3 && Number(reasons.total) >= 40, `signins: failures by reason (${JSON.stringify(reasons)})`);
  await page.waitForSelector('[data-testid=audit-table] tbody tr');
  await noJunk(page, 'signins');
  await shots(page, 'signins');
  await page.locator('details.filter-box summary').click();
  await page.fill('[data-testid=audit-filters] input[name=event]', 'callback_refused');
  await page.click('[data-testid=audit-filters] button[type=submit]');
  await page.waitForURL(/event=callback_refused/);
  await page.waitForSelector('[data-testid=remove-event]');
  await page.waitForSelector('[data-testid=audit-table] tbody tr [data-filter-key=event]');
  const events = await page.locator('[data-testid=audit-table] tbody [data-filter-key=event]').allTextContents();
  check(events.length >= 20 && events.every((e) => e === 'callback_refused'), `signins: only refused callbacks listed (${events.length})`);
  await page.reload();
  await page.waitForSelector('[data-testid=remove-event]');
  check((await page.textContent('[data-testid=filter-chips]')).includes('callback_refused'), 'signins: the chip survives a reload (kept in the URL)');
  // a value in the list adds its filter
  await page.waitForSelector('[data-testid=audit-table] tbody [data-filter-key=provider]');
  const prov = await page.locator('[data-testid=audit-table] tbody [data-filter-key=provider]').first().textContent();
  await page.locator('[data-testid=audit-table] tbody [data-filter-key=provider]').first().click();
  await page.waitForURL(new RegExp(`provider=${prov}`));
  await page.waitForSelector('[data-testid=remove-provider]');
  await page.click('[data-testid=remove-event]');
  await page.waitForURL((u) => !u.search.includes('event=') && u.search.includes(`provider=${prov}`));
  check(true, 'signins: a chip removed, the other kept');
  // a flow: Morgan's own console sign-in has one
  await page.goto(`${base}/.console/security/signins?event=console_sign_in`);
  await page.waitForSelector('[data-testid=audit-table] tbody a[title^="Flow "]');
  await page.locator('[data-testid=audit-table] tbody a[title^="Flow "]').first().click();
  await view(page, 'view-flow');
  await page.waitForSelector('[data-testid=flow-table] tbody tr');
  check(/console_sign_in/.test(await page.textContent('[data-testid=flow-table]')), 'flow: the sign-in flow\'s steps');
  await noJunk(page, 'flow');
  await shots(page, 'flow');

  lap('Customer security (Ada)');
  // Customer security (Ada): revoke a session, unlink Facebook, erase, each behind a confirmation
  await page.goto(`${base}/.console/customers?q=ada%40demo.test`);
  await page.locator('[data-testid=customer-link]').click();
  await view(page, 'view-profile');
  await page.click('[data-testid=security-link]');
  await view(page, 'view-customer-security');
  await page.waitForSelector('[data-testid=sessions-table] [data-testid=revoke-session]');
  check((await page.textContent('[data-testid=sec-person]')).includes('Ada Lovelace'), 'security: the customer by name');
  await noJunk(page, 'customer security');
  await shots(page, 'customer-security');
  await page.locator('[data-testid=revoke-session]').first().click();
  await page.waitForSelector('[data-testid=confirm-dialog]');
  await page.click('[data-testid=confirm-ok]');
  await page.waitForSelector('#status.status-ok');
  check(/Revoked 1 session/.test(await page.textContent('#status')), `security: one session revoked (${await page.textContent('#status')})`);
  check((await ada.page.request.get(`${base}/.auth/me`)).status() === 401, 'security: the revoked session no longer works');
  await page.waitForSelector('[data-testid=unlink-identity]:not([disabled])');
  await page.locator('[data-testid=unlink-identity][aria-label="Unlink facebook identity"]').click();
  await page.click('[data-testid=confirm-cancel]');
  check(await page.locator('[data-testid=identities-table] tbody tr').count() === 2, 'security: cancelling the unlink changes nothing');
  await page.locator('[data-testid=unlink-identity][aria-label="Unlink facebook identity"]').click();
  await page.click('[data-testid=confirm-ok]');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=identities-table] tbody tr').length === 1);
  check(/Unlinked facebook/.test(await page.textContent('#status')), 'security: facebook unlinked');
  await page.click('[data-testid=erase-customer]');
  check(await page.isDisabled('[data-testid=confirm-ok]'), 'security: erasing waits for the id to be typed');
  await page.fill('#confirm-input', adaMe.customer_id);
  await page.click('[data-testid=confirm-ok]');
  await page.waitForSelector('[data-testid=erased]');
  check((await page.request.get(`${base}/.console/api/customers/${adaMe.customer_id}`)).status() === 404, 'security: the customer is erased');
  const trail = await (await page.request.get(`${base}/.console/api/audit?customer=${adaMe.customer_id}&limit=50`)).json();
  const actions = trail.records.filter((r) => r.actor === 'staff:google:morgan@staff.demo.test').map((r) => r.event);
  check(['session_revoked', 'identity_unlinked', 'erasure'].every((e) => actions.includes(e)), `security: the actions are on record as Morgan's (${actions})`);

  lap('Policies and explain');
  // Policies and explain
  await page.click('[data-testid=nav-policies]');
  await view(page, 'view-policies');
  await page.waitForSelector('[data-testid=routes-policies-table]');
  check(/✓ applies/.test(await page.textContent('[data-testid=routes-policies-table]')), 'policies: routes × policies');
  await page.fill('#explain-customer', pick.customer_id);
  await page.selectOption('#explain-route', 'account');
  await page.getByRole('button', { name: 'Explain' }).click();
  await page.waitForSelector('[data-testid=explain-result] p[data-decision]');
  check(await page.getAttribute('[data-testid=explain-result] p[data-decision]', 'data-decision') === 'allow', 'policies: explain allows a signed-in customer on account');
  check(page.url().includes(`customer=${pick.customer_id}`) && page.url().includes('route=account'), 'policies: the question is kept in the URL');
  check((await page.textContent('[data-testid=explain-facts]')).includes(pick.customer_email), 'policies: the facts name the customer\'s email');
  await noJunk(page, 'policies');
  await shots(page, 'policies');
  await ada.context.close();
  await browser.close();
  browser = null;

  lap('---- part 2');
  // ---- part 2: one role each, the same store served from a configuration with the test OP
  check(await stop(demo) === 0, 'the demo stops cleanly');
  const gwPort = await freePort();
  base = `http://127.0.0.1:${gwPort}`;
  const op = spawn('node', [join(HERE, '..', 'peers', 'rogue-op.mjs'), '--port', '0', '--client-id', 'jg-console', '--client-secret', 'jg-console-secret-0123456789',
    '--redirect-uri', `${base}/.auth/login/google/callback`], { cwd: join(HERE, '..', 'peers'), stdio: ['ignore', 'pipe', 'inherit'] });
  procs.push(op);
  const opPort = await new Promise((res, rej) => {
    const rl = createInterface({ input: op.stdout });
    rl.on('line', (l) => { if (l.startsWith('READY ')) res(Number(l.split(' ')[1])); });
    op.once('exit', () => rej(new Error('the test OP did not start')));
  });
  const config = {
    listen: [{ address: '127.0.0.1', port: gwPort }], public_url: base, threads: 1,
    store: { path: join(state, 'journeygate-demo') },
    upstreams: { up: { url: `http://127.0.0.1:${upPort}` } },
    providers: { google: { type: 'oidc', client_id: 'jg-console', client_secret: 'jg-console-secret-0123456789', issuer: `http://127.0.0.1:${opPort}`, insecure_http: true } },
    policies: {
      signed_in: { rules: [{ allow: { signed_in: true } }] },
      staff_marketing: { rules: [{ allow: { email_domain: ['mkt.example'] } }] },
      staff_security: { rules: [{ allow: { email_domain: ['sec.example'] } }] },
      staff_admin: { rules: [{ allow: { email_domain: ['adm.example'] } }] },
    },
    console: { roles: { marketer: 'staff_marketing', security: 'staff_security', admin: 'staff_admin' } },
    routes: [{ name: 'account', match: { path_prefix: '/account/' }, upstream: 'up', auth: 'session', policy: 'signed_in', channel: 'web' },
      { name: 'site', match: { path_prefix: '/' }, upstream: 'up', auth: 'none' }],
    limits: { auth_rate_per_minute: 1000000, auth_burst: 1000000 },
  };
  writeFileSync(join(state, 'console.json'), JSON.stringify(config, null, 1));
  const gw = spawn(JG_BIN, ['serve', '--config', join(state, 'console.json')], { stdio: ['ignore', 'ignore', 'inherit'] });
  procs.push(gw);
  await waitFor(`${base}/.console/login/google`, 20000);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'],
  });
  const signIn = async (email, refused = false) => {
    const p = await newPerson(browser, email, 1280, refused);
    await p.page.goto(`${base}/.console/login/google?return_to=${encodeURIComponent('/.console/')}&login_hint=${encodeURIComponent(email)}`);
    return p;
  };

  lap('a marketer');
  // a marketer: the marketer's screens with the sample's data, no security screen
  const mia = await signIn('mia@mkt.example');
  await view(mia.page, 'view-overview');
  check(/marketer/.test(await mia.page.textContent('[data-testid=roles]')) && !/security/.test(await mia.page.textContent('[data-testid=roles]')), 'marketer: the one role shown');
  check(Number(await mia.page.getAttribute('li[data-metric="customers_seen"]', 'data-value')) >= 250, 'marketer: the overview\'s figures');
  check(!(await mia.page.isVisible('[data-testid=nav-signins]')) && !(await mia.page.isVisible('[data-testid=nav-policies]')), 'marketer: no security screen in the navigation');
  await mia.page.goto(`${base}/.console/customers?q=${encodeURIComponent(pick.customer_email)}`);
  await mia.page.locator('[data-testid=customer-link]').click();
  await view(mia.page, 'view-profile');
  await mia.page.waitForSelector('[data-testid=profile-summary]');
  check(!(await mia.page.isVisible('[data-testid=security-link]')), 'marketer: the profile offers no security page');
  await mia.page.goto(`${base}/.console/security/signins`);
  await view(mia.page, 'view-forbidden');
  check(/Your role does not include security/.test(await mia.page.textContent('[data-testid=error]')), 'marketer: told the role does not include security');
  await shots(mia.page, 'marketer-refused');
  const miaApi = await mia.page.request.get(`${base}/.console/api/audit`);
  check(miaApi.status() === 403 && (await miaApi.json()).role === 'security', 'marketer: the API refuses the trail (403, role security)');

  lap('a security analyst');
  // a security analyst without admin: the trail and policies, no marketer screens, no unlink or erase
  const sam = await signIn('sam@sec.example');
  await view(sam.page, 'view-signins');
  await sam.page.waitForSelector('[data-testid=chain-state][data-state="verified"]');
  check(Number(await sam.page.getAttribute('[data-testid=chain-state]', 'data-verified-up-to')) > 300, 'security: the chain verified');
  check(!(await sam.page.isVisible('[data-testid=nav-overview]')) && await sam.page.isVisible('[data-testid=nav-policies]'), 'security: security screens only in the navigation');
  await sam.page.goto(`${base}/.console/security/customers/${pick.customer_id}`);
  await view(sam.page, 'view-customer-security');
  await sam.page.waitForSelector('[data-testid=sec-person]');
  check((await sam.page.textContent('[data-testid=sec-person]')).includes(pick.customer_name), 'security: the customer by name');
  check(await sam.page.locator('[data-testid=unlink-identity], [data-testid=erase-customer]').count() === 0, 'security without admin: no unlink, no erase');
  await sam.page.goto(`${base}/.console/overview`);
  await view(sam.page, 'view-forbidden');
  check(/Your role does not include marketer/.test(await sam.page.textContent('[data-testid=error]')), 'security: told the role does not include marketer');
  await shots(sam.page, 'security-refused');
  const samErase = await sam.page.request.post(`${base}/.console/api/customers/${pick.customer_id}/erase`,
    { data: { confirm: pick.customer_id }, headers: { 'X-CSRF-Token': (await (await sam.page.request.get(`${base}/.console/api/me`)).json()).csrf } });
  check(samErase.status() === 403 && (await samErase.json()).role === 'admin', 'security without admin: the API refuses an erasure (403, role admin)');

  lap('an administrator alone');
  // an administrator alone: signed in, but no screen is theirs
  const ana = await signIn('ana@adm.example');
  await ana.page.waitForSelector('main[data-testid=view-norole]');
  check(/No console role/.test(await ana.page.textContent('h1')), 'admin alone: told no section is theirs');

  // nobody: no role, no session
  const eve = await signIn('eve@elsewhere.example', true);
  check(/The console is not open to you/.test(await eve.page.textContent('body')), 'no role: the console\'s refusal page');
  check((await eve.page.request.get(`${base}/.console/api/me`)).status() === 401, 'no role: no staff session made');
  await browser.close();
  browser = null;
  check(await stop(gw) === 0, 'the gateway stops cleanly');
} catch (e) {
  failed++;
  console.error(`FAIL: ${e.stack || e}`);
} finally {
  if (browser) await browser.close();
  cleanup();
  if (!process.env.KEEP_TMP) rmSync(state, { recursive: true, force: true });
  clearTimeout(deadline);
}
for (const p of problems) check(false, p);
check(problems.length === 0, 'no console error, page error or CSP violation on the gateway\'s pages');
console.log(`screenshots: ${ARTIFACTS}`);
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
