/** Runs scripts/sim.ts as child processes and collects their JSON reports. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SimRun } from './report';

const SIM = fileURLToPath(new URL('../sim.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The simulator run the bench reports: `nodes` nodes, half crash, seed 1, 20 broadcasts per batch. */
export function simArgs(nodes: number): string[] {
  return ['--nodes', String(nodes), '--fail', '0.5', '--seed', '1', '--json', '--broadcasts', '20'];
}

export function runSim(args: string[], timeoutMs = 300_000): Promise<SimRun> {
  const started = Date.now();
  return new Promise((resolve) => {
    // plain node + the tsx loader: no npx wrapper in between
    const child = spawn(process.execPath, ['--import', 'tsx', SIM, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const wallMs = Date.now() - started;
      if (code !== 0) return resolve({ args, ok: false, wallMs, error: `exit ${code ?? signal}: ${err.trim().slice(-500)}` });
      try {
        const line = out.trim().split('\n').pop() ?? '';
        resolve({ args, ok: true, wallMs, report: JSON.parse(line) as Record<string, unknown> });
      } catch (e) {
        resolve({ args, ok: false, wallMs, error: `bad JSON: ${(e as Error).message}` });
      }
    });
  });
}
