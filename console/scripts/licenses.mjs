// Writes dist/THIRD_PARTY_LICENSES.txt: the licence (and NOTICE) text of every production
// dependency that ends up in the built assets (package.json "dependencies", followed transitively),
// so the binary that embeds dist/ ships them. Run by `npm run build` after vite.
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'THIRD_PARTY_LICENSES.txt');

function pkgDir(name, from) {
  // node's resolution order: nested node_modules first, then up to the root
  for (let d = from; ; d = dirname(d)) {
    const p = join(d, 'node_modules', name);
    if (existsSync(join(p, 'package.json'))) return p;
    if (d === root || dirname(d) === d) return null;
  }
}

const seen = new Map();
function walk(name, from) {
  const dir = pkgDir(name, from);
  if (!dir) throw new Error(`licences: production dependency ${name} is not installed (run npm ci)`);
  if (seen.has(dir)) return;
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  seen.set(dir, pkg);
  for (const dep of Object.keys(pkg.dependencies ?? {})) walk(dep, dir);
}
const top = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
for (const dep of Object.keys(top.dependencies ?? {})) walk(dep, root);

const parts = ['Third-party software in the journeygate console (the built assets under /.console/)\n'];
for (const [dir, pkg] of [...seen].sort((a, b) => a[1].name.localeCompare(b[1].name))) {
  const files = readdirSync(dir).filter((f) => /^(licen[sc]e|notice|copying)(\.|$)/i.test(f)).sort();
  if (files.length === 0) throw new Error(`licences: ${pkg.name} ships no LICENSE file`);
  parts.push('='.repeat(78), `${pkg.name} ${pkg.version} — licence: ${pkg.license ?? 'see below'}`,
    pkg.homepage ? `home: ${pkg.homepage}` : '', '='.repeat(78));
  for (const f of files) parts.push(`--- ${f} ---`, readFileSync(join(dir, f), 'utf8').trimEnd(), '');
}
writeFileSync(out, parts.filter((x) => x !== '').join('\n') + '\n');
console.log(`licences: ${seen.size} package(s) -> ${out}`);
