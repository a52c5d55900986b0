/**
 * The Yjs side's page: built with Vite from scripts/bench/yjs-page/ into a temporary
 * directory and served by our signaling server's static handler (only as a file server:
 * the Yjs tabs signal through the stock y-webrtc-signaling server).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { startSignalingServer } from '../../signaling/server';

export interface YjsPage {
  /** http URL of the page (ends with '/'). */
  url: string;
  close(): Promise<void>;
}

export async function buildAndServeYjsPage(): Promise<YjsPage> {
  const outDir = await mkdtemp(join(tmpdir(), 'bench-yjs-'));
  await build({
    configFile: fileURLToPath(new URL('./vite.yjs.config.ts', import.meta.url)),
    build: { outDir },
  });
  const server = await startSignalingServer({ port: 0, host: '127.0.0.1', staticDir: outDir, log: () => undefined });
  return {
    url: server.url,
    close: async () => {
      await server.close();
      await rm(outDir, { recursive: true, force: true });
    },
  };
}
