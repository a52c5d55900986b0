import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

export default defineConfig({
  // compiles the UI's `.svelte.ts` state classes (runes) for their unit tests
  plugins: [svelte()],
  test: {
    include: ['src/**/*.test.ts', 'signaling/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
  },
});
