// End to end: headless Chromium (Debian's chromium, driven by playwright-core) signs in
// through `journeygate demo` at the development stand-ins for Google and Facebook, reaches
// the upstream page showing the customer id, and signs out. Prints "N passed, M failed".
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from '../peers/node_modules/playwright-core/index.mjs';
import { freePort, waitFor } from './lib/net.mjs';

const JG_BIN = process.env.JG_BIN || 'build/journeygate';
const deadline = setTimeout(() => { console.error('e2e: overall timeout'); process.exit(1); }, 120000);

const state = mkdtempSync(join(tmpdir(), 'jg-e2e-'));
const [port, upPort, idpPort] = [await freePort(), await freePort(), await freePort()];
const base = `http://127.0.0.1:${port}`;
const gw = spawn(JG_BIN, ['demo', '--port', `${port}`, '--upstream-port', `${upPort}`, '--idp-port', `${idpPort}`],
  { env: { ...process.env, XDG_STATE_HOME: state }, stdio: ['ignore', 'ignore', 'inherit'] });
let passed = 0, failed = 0;
const check = (ok, what) => { if (ok) passed++; else { failed++; console.error(`FAIL: ${what}`); } };

let browser;
try {
  // the providers load their keys in the background: a login answers 302 once they are ready
  await waitFor(`${base}/.auth/login/google`, 20000);
  await waitFor(`${base}/.auth/login/facebook`, 20000);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'],
  });

  for (const [provider, persona] of [['Google', 'ada'], ['Facebook', 'linus']]) {
    const context = await browser.newContext();
    const page = await context.newPage();
    // a protected page sends the browser to the sign-in page
    await page.goto(`${base}/account/orders?x=1`, { waitUntil: 'load', timeout: 15000 });
    check(page.url().startsWith(`${base}/.auth/signin?return_to=`), `${provider}: sign-in page (${page.url()})`);
    await page.getByRole('link', { name: new RegExp(`Continue with ${provider}`) }).click();
    await page.waitForURL(/\/(google\/authorize|facebook\/v19\.0\/dialog\/oauth)/, { timeout: 15000 });
    check((await page.textContent('main')).includes('Development only'), `${provider}: stand-in is labelled`);
    await page.click(`a[data-persona="${persona}"]`);
    await page.waitForURL(`${base}/account/orders?x=1`, { timeout: 15000 });
    const who = (await page.textContent('#customer')) || '';
    const id = (who.match(/c_[a-z2-7]{24}/) || [])[0];
    check(id !== undefined, `${provider}: upstream page shows the customer id (${who.trim()})`);
    const cookies = await context.cookies(base);
    const session = cookies.find((c) => c.name === 'jg_session');
    check(session && session.httpOnly && session.sameSite === 'Lax', `${provider}: HttpOnly SameSite=Lax session cookie`);
    const me = await (await page.request.get(`${base}/.auth/me`)).json();
    check(me.customer_id === id, `${provider}: /.auth/me names the same customer`);
    await page.screenshot({ path: join(state, `signed-in-${persona}.png`) });
    // sign out through the confirmation page
    await page.goto(`${base}/.auth/logout`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForLoadState('load');
    check((await page.textContent('h1')) === 'Signed out', `${provider}: signed out page`);
    const after = await page.request.get(`${base}/.auth/me`);
    check(after.status() === 401, `${provider}: session gone after sign-out`);
    await context.close();
  }
} catch (e) {
  failed++;
  console.error(`FAIL: ${e.stack || e}`);
} finally {
  if (browser) await browser.close();
  gw.kill('SIGTERM');
  if (!process.env.KEEP_TMP) rmSync(state, { recursive: true, force: true });
  clearTimeout(deadline);
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
