// Prints the size of each file of snippet/dist/ (raw, gzip, brotli) and fails when what every
// page loads (snippet.js) is over its budget of 2.5 KB gzipped.
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';
import { FILES } from './build.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const BUDGET = { 'snippet.js': 2560 };

export async function sizes(dir = join(root, 'dist')) {
  const out = [];
  for (const file of FILES) {
    const data = await readFile(join(dir, file));
    out.push({
      file,
      raw: data.length,
      gzip: gzipSync(data, { level: 9 }).length,
      brotli: brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
    });
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  let over = false;
  for (const { file, raw, gzip, brotli } of await sizes()) {
    const budget = BUDGET[file];
    const note = budget ? ` (budget ${budget} B gzipped${gzip > budget ? ': OVER' : ''})` : ' (loaded on demand)';
    if (budget && gzip > budget) over = true;
    console.log(`${file.padEnd(12)} ${String(raw).padStart(6)} B raw  ${String(gzip).padStart(5)} B gzip  ${String(brotli).padStart(5)} B brotli${note}`);
  }
  if (over) process.exit(1);
}
