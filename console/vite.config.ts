// The console is served by the gateway under /.console/ (gateway/console: embedded assets).
// Strict CSP there: script-src 'self' — so no inline script, no module-preload polyfill.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  base: '/.console/',
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
