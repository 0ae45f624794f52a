// Builds snippet/dist/ from snippet/src/: each source is minified on its own with terser
// (ES2017 output, one IIFE per file), then parsed back with acorn as ES2017 so that a newer
// syntax slipping into the sources fails the build. Usage: node scripts/build.mjs OUT_DIR
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { minify } from 'terser';
import { parse } from 'acorn';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const FILES = ['snippet.js', 'ui.js'];

export async function build(outDir) {
  await mkdir(outDir, { recursive: true });
  for (const file of FILES) {
    const source = await readFile(join(root, 'src', file), 'utf8');
    parse(source, { ecmaVersion: 2017, sourceType: 'script' });
    const result = await minify(source, {
      ecma: 2017,
      compress: { ecma: 2017, passes: 3, unsafe_arrows: false },
      mangle: true,
      format: { ecma: 2017, comments: false, ascii_only: true },
    });
    const code = result.code + '\n';
    parse(code, { ecmaVersion: 2017, sourceType: 'script' });
    await writeFile(join(outDir, file), code);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = resolve(process.argv[2] || join(root, 'dist'));
  await build(out);
  console.log(`built ${FILES.join(', ')} into ${out}`);
}
