// Rebuilds the dashboard into a temporary folder and fails when the committed dist/ differs:
// dist/ is embedded in the lookout binary, so it must be exactly what the sources build to.
import { build } from 'vite';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const tmp = mkdtempSync(join(tmpdir(), 'lookout-dash-'));

function files(dir) {
  const out = new Map();
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p).split('\\').join('/'), readFileSync(p));
    }
  };
  try {
    walk(dir);
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
  }
  return out;
}

try {
  await build({ root, logLevel: 'warn', build: { outDir: tmp, emptyOutDir: true } });
  const fresh = files(tmp);
  const committed = files(dist);
  const problems = [];
  for (const [name, buf] of fresh) {
    if (!committed.has(name)) problems.push(`missing from dist/: ${name}`);
    else if (!committed.get(name).equals(buf)) problems.push(`differs: ${name}`);
  }
  for (const name of committed.keys()) if (!fresh.has(name)) problems.push(`stale in dist/: ${name}`);
  if (problems.length) {
    console.error('dashboard/dist is not the build of dashboard/src:');
    for (const p of problems) console.error('  ' + p);
    console.error('Run `npm run build` in dashboard/ and commit dist/.');
    process.exitCode = 1;
  } else {
    console.log(`dashboard/dist matches a fresh build (${fresh.size} files).`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
