import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The built-in page (served by the collector at /): web/ -> dist/web, bundled with its chart
 * library (no CDN: NOC networks are often isolated). base './' keeps every URL relative, so the
 * page works behind a reverse proxy under any path prefix.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    // No inline scripts or data: URLs for scripts: the page's CSP is script-src 'self'.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    target: 'es2022',
  },
});
