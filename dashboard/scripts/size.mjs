// Prints what a first visit downloads (the JS and CSS index.html references, gzipped) and the
// chunks loaded later on demand. Fails when the first load exceeds the budget.
import { readFileSync, readdirSync } from 'node:fs';
import { gzipSync, brotliCompressSync } from 'node:zlib';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const BUDGET = 150 * 1024;
const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const html = readFileSync(join(dist, 'index.html'), 'utf8');
const initial = new Set([...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]));
const all = readdirSync(join(dist, 'assets'))
  .filter((f) => /\.(js|css)$/.test(f))
  .map((f) => 'assets/' + f);

const kb = (n) => (n / 1024).toFixed(1) + ' KB';
function row(f) {
  const buf = readFileSync(join(dist, f));
  return { f, raw: buf.length, gz: gzipSync(buf, { level: 9 }).length, br: brotliCompressSync(buf).length };
}
const first = [...initial].map(row);
const later = all.filter((f) => !initial.has(f)).map(row);
const pad = (s, n) => String(s).padEnd(n);
console.log(pad('first load', 44) + pad('raw', 11) + pad('gzip', 11) + 'brotli');
for (const r of first) console.log('  ' + pad(r.f, 42) + pad(kb(r.raw), 11) + pad(kb(r.gz), 11) + kb(r.br));
const total = first.reduce((a, r) => a + r.gz, 0);
const totalBr = first.reduce((a, r) => a + r.br, 0);
console.log(`  ${pad('total', 42)}${pad(kb(first.reduce((a, r) => a + r.raw, 0)), 11)}${pad(kb(total), 11)}${kb(totalBr)}`);
if (later.length) {
  console.log('on demand');
  for (const r of later) console.log('  ' + pad(r.f, 42) + pad(kb(r.raw), 11) + pad(kb(r.gz), 11) + kb(r.br));
}
console.log(`\nFirst load: ${kb(total)} gzipped JS+CSS (budget ${kb(BUDGET)}).`);
if (total > BUDGET) {
  console.error('Over budget.');
  process.exitCode = 1;
}
