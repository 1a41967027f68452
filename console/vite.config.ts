// The console is served by the gateway under /.console/ (gateway/console: embedded assets).
// Strict CSP there: script-src 'self' — so no inline script, no module-preload polyfill.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  base: '/.console/',
  // an address, not "localhost": the dev server (and vitest, which starts one) then never asks the
  // resolver for localhost, which a minimal machine without /etc/hosts cannot answer
  server: { host: '127.0.0.1' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    sourcemap: false,
    // one chart library chunk is large by nature; say so only past ~1 MB
    chunkSizeWarningLimit: 1000,
  },
  test: {
    environment: 'node',
    include: ['tests/**/*.test.ts', 'tests/**/*.test.mjs'],
  },
});
