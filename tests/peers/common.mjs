// Shared helpers for the loopback test peers (node: built-ins only, so the
// dependency-free peers stay dependency-free).
//
// Contract every peer follows:
//   - binds 127.0.0.1 only, port from `--port N` (0 = the kernel picks a free one);
//   - prints exactly one line `READY <port>` on stdout once it is listening, and
//     nothing else on stdout (diagnostics go to stderr);
//   - exits 0 on SIGTERM / SIGINT;
//   - never connects anywhere (no outbound requests at all).
import crypto from 'node:crypto';
import { parseArgs } from 'node:util';

// Anything a library prints with console.log/info/debug would corrupt the
// "stdout is exactly one READY line" contract: send it to stderr instead.
export function quietStdout() {
  const toStderr = (...a) => console.error(...a);
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;
}

export function die(prog, msg) {
  process.stderr.write(`${prog}: ${msg}\n`);
  process.exit(2);
}

// parseArgs with the peers' conventions: `--opt value` or `--opt=value`;
// `multiple` options may also be comma-separated, except those named in `noSplit`.
export function parseCli(prog, options, usage, noSplit = []) {
  let values;
  try {
    ({ values } = parseArgs({
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: false,
      strict: true,
    }));
  } catch (e) {
    die(prog, `${e.message}\n${usage}`);
  }
  if (values.help) {
    process.stderr.write(`${usage}\n`);
    process.exit(0);
  }
  for (const [k, spec] of Object.entries(options)) {
    if (spec.multiple && !noSplit.includes(k) && Array.isArray(values[k])) {
      values[k] = values[k].flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
    }
  }
  const port = Number(values.port ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) die(prog, `bad --port: ${values.port}`);
  values.port = port;
  return values;
}

// Listen on 127.0.0.1, then announce the real port. `onListening(port)` runs
// before READY is printed (google-op builds its Provider there, because the
// issuer URL contains the port).
export function listen(server, port, onListening = () => {}) {
  server.on('error', (e) => {
    process.stderr.write(`listen failed: ${e.message}\n`);
    process.exit(1);
  });
  server.listen(port, '127.0.0.1', async () => {
    const actual = server.address().port;
    try {
      await onListening(actual);
    } catch (e) {
      process.stderr.write(`start-up failed: ${e.stack || e}\n`);
      process.exit(1);
    }
    process.stdout.write(`READY ${actual}\n`);
  });
  const stop = () => {
    // Hanging modes keep sockets open on purpose: do not wait for them.
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // An unexpected bug must not leave a half-working peer behind a test.
  process.on('uncaughtException', (e) => {
    process.stderr.write(`uncaught: ${e.stack || e}\n`);
    process.exit(1);
  });
}

export const b64url = (buf) => Buffer.from(buf).toString('base64url');

// Google-like subject: a decimal string, stable per (case-insensitive) email.
export function subFor(email) {
  const h = crypto.createHash('sha256').update(String(email).toLowerCase()).digest('hex');
  return `1${BigInt(`0x${h.slice(0, 15)}`).toString().padStart(18, '0')}`;
}

// "alice.smith@example.com" -> "Alice Smith"
export function nameFor(email) {
  return String(email).split('@')[0].split(/[._+-]+/).filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1)).join(' ') || 'User';
}

export const emailDomain = (email) => String(email).split('@').pop().toLowerCase();

// A 1x1 transparent PNG, served for the `picture` URLs so that nothing (a
// browser rendering a profile page, say) ever needs to leave 127.0.0.1.
export const PIXEL_PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'base64',
);

// Read a request body, refusing more than `limit` bytes.
export function readBody(req, limit = 64 * 1024) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(Object.assign(new Error('body too large'), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function sendJson(res, status, obj, headers = {}) {
  const body = JSON.stringify(obj);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(body);
}

export function sendText(res, status, text, type = 'text/plain; charset=utf-8') {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

// Constant-time string comparison (the peers are strict, and should not be a
// worse example than the gateway is expected to be).
export function safeEqual(a, b) {
  const x = Buffer.from(String(a));
  const y = Buffer.from(String(b));
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

export function randomToken(prefix = '', bytes = 24) {
  return prefix + crypto.randomBytes(bytes).toString('base64url');
}

export function verboseLogger(enabled, prog) {
  return (req, status) => {
    if (enabled) process.stderr.write(`${prog}: ${req.method} ${req.url.split('?')[0]} -> ${status}\n`);
  };
}
