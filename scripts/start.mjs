#!/usr/bin/env node
// `npm start` on a fresh clone: install if needed, build the app, serve it together
// with the signaling server on one port, and print the URL. Plain Node: runs before
// any dependency is installed.
import { existsSync } from 'node:fs';
import { spawnSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

if (!existsSync(`${root}/node_modules/.package-lock.json`)) {
  console.log('Installing dependencies (first run)...');
  run(npm, ['install', '--no-audit', '--no-fund']);
}
console.log('Building the app...');
run(npm, ['exec', '--', 'vite', 'build', '--logLevel', 'warn']);
// run the server as our direct child so signals reach it (npm exec would not forward them)
const server = spawn(process.execPath, ['--import', 'tsx', 'signaling/main.ts'], { cwd: root, stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.kill(sig));
server.on('exit', (code) => process.exit(code ?? 0));
