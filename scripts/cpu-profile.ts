/**
 * Shared by the developer profiling scripts (profile-kv.ts, profile-seg.ts): the CPU time of
 * this machine's Chromium processes, a summary of a V8 CPU profile (CDP Profiler), and the
 * tabs' counters summed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { Tab } from '../e2e/harness';

/** The numeric `stats()` entries whose names match `names`, summed over `tabs`. */
export async function summedStats(tabs: readonly Tab[], names: RegExp): Promise<Map<string, number>> {
  const all = await Promise.all(tabs.map((t) => t.page.evaluate(() => window.p2p.stats() as Record<string, unknown>)));
  const m = new Map<string, number>();
  for (const st of all) for (const [k, v] of Object.entries(st)) if (typeof v === 'number' && names.test(k)) m.set(k, (m.get(k) ?? 0) + v);
  return m;
}

/**
 * CPU seconds used so far by every Chromium process on this machine (Linux /proc), all
 * threads: renderers (main thread and the rest: raster, WebRTC, IO) and the browser, GPU
 * and network processes. Less noisy than throughput on a shared 2-core machine.
 */
export function chromiumCpu(): { renderers: number; rendererMain: number; rest: number } {
  const tick = 100; // USER_HZ
  const r = { renderers: 0, rendererMain: 0, rest: 0 };
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
      if (!cmd.includes('chromium')) continue;
      const cpu = (stat: string): number => {
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return (Number(f[11]) + Number(f[12])) / tick;
      };
      const total = cpu(readFileSync(`/proc/${pid}/stat`, 'latin1'));
      if (cmd.includes('--type=renderer')) {
        r.renderers += total;
        r.rendererMain += cpu(readFileSync(`/proc/${pid}/task/${pid}/stat`, 'latin1'));
      } else r.rest += total;
    } catch {
      // the process ended meanwhile
    }
  }
  return r;
}

export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}
export interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Prints the `top` functions by self time in a V8 CPU profile, and how busy the thread was. */
export function summarise(name: string, p: Profile, top: number): void {
  const self = new Map<string, number>();
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i]!)!;
    const dt = p.timeDeltas[i] ?? 0;
    total += dt;
    const f = n.callFrame;
    const file = f.url.split('/').pop() ?? '';
    const key = `${f.functionName || '(anonymous)'} ${file}:${f.lineNumber + 1}:${f.columnNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const idle = [...self.entries()].filter(([k]) => k.startsWith('(idle)')).reduce((a, [, v]) => a + v, 0);
  console.log(`\n== ${name}: ${(total / 1000).toFixed(0)} ms sampled, busy ${(((total - idle) / total) * 100).toFixed(0)} %`);
  const rows = [...self.entries()].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [k, v] of rows) console.log(`${(v / 1000).toFixed(1).padStart(8)} ms ${((v / (total - idle)) * 100).toFixed(1).padStart(5)} %  ${k}`);
}
