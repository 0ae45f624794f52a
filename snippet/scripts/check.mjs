// CI check: rebuilds into a temporary directory and fails when snippet/dist/ differs from what
// the sources build to (someone edited src/ without `npm run build`, or edited dist/ by hand),
// or when snippet.js is over its size budget.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, FILES } from './build.mjs';
import { sizes, BUDGET } from './size.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const tmp = await mkdtemp(join(tmpdir(), 'lookout-snippet-'));
let failed = false;
try {
  await build(tmp);
  for (const file of FILES) {
    const fresh = await readFile(join(tmp, file), 'utf8');
    const committed = await readFile(join(root, 'dist', file), 'utf8').catch(() => null);
    if (committed !== fresh) {
      console.error(`snippet/dist/${file} is not what snippet/src/${file} builds to: run \`npm run build\` in snippet/`);
      failed = true;
    }
  }
  for (const { file, gzip } of await sizes(tmp)) {
    if (BUDGET[file] && gzip > BUDGET[file]) {
      console.error(`snippet/dist/${file} is ${gzip} B gzipped, over its budget of ${BUDGET[file]} B`);
      failed = true;
    }
  }
} finally {
  await rm(tmp, { recursive: true, force: true });
}
if (failed) process.exit(1);
console.log('snippet/dist/ is up to date and within budget');
