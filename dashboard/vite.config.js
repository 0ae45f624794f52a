import { defineConfig } from 'vite';

// The dashboard is served by the lookout binary from dashboard/dist/ under a strict CSP
// (no inline scripts or styles), so the build must not inline anything into index.html.
const backend = process.env.LOOKOUT_DEV_BACKEND || 'http://127.0.0.1:8080';

export default defineConfig({
  base: '/',
  oxc: {
    jsx: { runtime: 'automatic', importSource: 'preact' },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2020',
    sourcemap: false,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
  server: {
    proxy: {
      '/api': backend,
      '/ws': { target: backend, ws: true },
      '/snippet.js': backend,
      '/snippet': backend,
    },
  },
});
