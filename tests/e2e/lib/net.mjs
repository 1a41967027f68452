// What the end-to-end tests share (tests/e2e/*.mjs; this folder is not a test): free ports and
// waiting for a sign-in endpoint to be ready.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

// A free port below the kernel's ephemeral range (as jgtest.py picks them): no client socket or
// port-0 listener elsewhere can take it between this check and the gateway's bind.
const ephemeralLow = (() => {
  try { return parseInt(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0], 10) || 32768; }
  catch { return 32768; }
})();
const handedOut = new Set();

function tryListen(port) {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A port on 127.0.0.1 nothing listens on, never the same twice in one process. */
export async function freePort() {
  const hi = ephemeralLow - 1, lo = Math.max(1024, hi - 12000);
  for (let i = 0; i < 500; i++) {
    const port = lo + Math.floor(Math.random() * (hi - lo + 1));
    if (!handedOut.has(port) && await tryListen(port)) { handedOut.add(port); return port; }
  }
  throw new Error('no free port');
}

/** Waits (at most ms) until url answers 302: a provider's sign-in is ready once its keys loaded. */
export async function waitFor(url, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try { const r = await fetch(url, { redirect: 'manual' }); if (r.status === 302) return; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} never answered 302`);
}
