// The build's embedding step (scripts/embed.mjs): the C table it writes for console_assets.h.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = join(dirname(fileURLToPath(import.meta.url)), '..', 'scripts', 'embed.mjs');
const run = (dist, out) => spawnSync(process.execPath, [script, dist, out, '/x/console_assets.h'], { encoding: 'utf8' });

describe('embed.mjs', () => {
  it('writes every file of dist, sorted, with content types, lengths and the bytes', () => {
    const d = mkdtempSync(join(tmpdir(), 'jg-embed-'));
    mkdirSync(join(d, 'assets'));
    writeFileSync(join(d, 'index.html'), '<!doctype html>');
    const bytes = Buffer.from([...Array.from({ length: 50 }, (_, i) => i * 5), 255, 10, 34]);
    writeFileSync(join(d, 'assets', 'index-Ab_1-x.js'), bytes);
    writeFileSync(join(d, 'assets', 'index-Zz9.css'), '');
    writeFileSync(join(d, 'THIRD_PARTY_LICENSES.txt'), 'MIT');
    const out = join(d, 'assets.c');
    const r = run(d, out);
    expect(r.status).toBe(0);
    const c = readFileSync(out, 'utf8');
    expect(c).toContain('#include "/x/console_assets.h"');
    const rows = [...c.matchAll(/\{"([^"]+)", "([^"]+)", (a\d+), (\d+)u\}/g)].map((m) => [m[1], m[2], m[4]]);
    expect(rows).toEqual([
      ['THIRD_PARTY_LICENSES.txt', 'text/plain; charset=utf-8', '3'],
      ['assets/index-Ab_1-x.js', 'text/javascript; charset=utf-8', '53'],
      ['assets/index-Zz9.css', 'text/css; charset=utf-8', '0'],
      ['index.html', 'text/html; charset=utf-8', '15'],
    ]);
    const arr = /static const unsigned char a1\[53\] = \{\n([^}]*)\n\};/.exec(c);
    expect(arr).not.toBeNull();
    expect(arr[1].split(/,\s*/).map(Number)).toEqual([...bytes]);
    expect(c).toContain('const size_t console_num_assets = 4;');
  });

  it('refuses a dist without index.html and a file with no known content type', () => {
    const d = mkdtempSync(join(tmpdir(), 'jg-embed-'));
    expect(run(d, join(d, 'o.c')).status).not.toBe(0);
    writeFileSync(join(d, 'index.html'), 'x');
    writeFileSync(join(d, 'data.bin'), 'x');
    const r = run(d, join(d, 'o.c'));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('no content type for data.bin');
  });
});
