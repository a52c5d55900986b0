/**
 * Builds the Yjs benchmark page (scripts/bench/yjs-page/) into a temporary directory;
 * scripts/bench/yjs.ts passes `build.outDir`. y-webrtc imports
 * `simple-peer/simplepeer.min.js` (the prebuilt browser bundle) itself; the alias
 * covers a bare `simple-peer` import in case a version changes that.
 */
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

export default defineConfig({
  root: fileURLToPath(new URL('./yjs-page/', import.meta.url)),
  base: './',
  logLevel: 'warn',
  resolve: {
    alias: [{ find: /^simple-peer$/, replacement: 'simple-peer/simplepeer.min.js' }],
  },
  build: { target: 'es2022', emptyOutDir: true, sourcemap: false, reportCompressedSize: false },
});
