import { execFileSync } from 'node:child_process';

/** Build the app once; every test serves `dist/` from its own signaling server. */
export default function globalSetup(): void {
  if (process.env.E2E_SKIP_BUILD === '1') return;
  execFileSync('npx', ['vite', 'build', '--logLevel', 'warn'], { stdio: 'inherit' });
}
