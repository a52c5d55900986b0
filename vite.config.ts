import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

export default defineConfig({
  plugins: [svelte()],
  build: { outDir: 'dist', sourcemap: true, target: 'es2022' },
  server: { host: '127.0.0.1' },
});
