/**
 * HyParView simulation: N nodes join, the overlay settles, a fraction F crashes at once,
 * the survivors heal. Deterministic for a seed.
 *
 *   npx tsx scripts/sim.ts --nodes 10000 --fail 0.5 --seed 1 --json
 *
 * Options (defaults in brackets):
 *   --nodes N [1000]        --fail F [0.5]           --seed S [1]
 *   --bootstrap contact|announce [contact; announce delivers every announce to all nodes: O(N) each]
 *   --join-interval MS [0: one by one, each join quiescent before the next; >0: concurrent]
 *   --wave-size W [1] (simultaneous joiners)   --wave-interval MS [1000] (with --join-interval > 0)
 *   --settle MS [30000]     --heal-max MS [120000]   --heal-settle MS [30000]
 *   --loss P [0]            --json (one JSON object on stdout)
 */
import { runOverlayScenario, type OverlayReport, type OverlayScenario } from '../src/sim';

function parse(argv: string[]): { opts: Partial<OverlayScenario>; json: boolean } {
  const opts: Partial<OverlayScenario> = {};
  let json = false;
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n)) throw new Error(`${flag} needs a number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    switch (a) {
      case '--json': json = true; continue;
      case '--nodes': opts.nodes = num(a, v); break;
      case '--fail': opts.fail = num(a, v); break;
      case '--seed': opts.seed = num(a, v); break;
      case '--bootstrap':
        if (v !== 'contact' && v !== 'announce') throw new Error('--bootstrap is contact or announce');
        opts.bootstrap = v;
        break;
      case '--join-interval': opts.joinInterval = num(a, v); break;
      case '--wave-size': opts.waveSize = num(a, v); break;
      case '--wave-interval': opts.waveInterval = num(a, v); break;
      case '--settle': opts.settleMs = num(a, v); break;
      case '--heal-max': opts.healMaxMs = num(a, v); break;
      case '--heal-settle': opts.healSettleMs = num(a, v); break;
      case '--loss': opts.network = { ...opts.network, lossRate: num(a, v) }; break;
      default: throw new Error(`unknown option ${a}`);
    }
    i++;
  }
  if (opts.nodes !== undefined && (opts.nodes < 1 || !Number.isInteger(opts.nodes))) throw new Error('--nodes must be a positive integer');
  if (opts.fail !== undefined && (opts.fail < 0 || opts.fail >= 1)) throw new Error('--fail must be in [0, 1)');
  return { opts, json };
}

function summary(r: OverlayReport): string {
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  return [
    `HyParView simulation: ${r.nodes} nodes, seed ${r.seed}, bootstrap ${r.bootstrap}`,
    `join cost        ${r.joinMessagesMean} messages per join on average, ${r.joinMessagesMax} at most`,
    `active view      min ${r.activeMin}, mean ${r.activeMean}, max ${r.activeMax}; passive mean ${r.passiveMean}`,
    `settled overlay  symmetric ${pct(r.symmetric)}, largest component ${pct(r.connectedBefore)}, leaked links ${r.leakedLinks}`,
    `crash            ${r.failed} nodes; survivors in largest component: ${pct(r.connectedAfterFailure)}`,
    `heal             ${r.healMs === null ? 'NOT healed' : `one component after ${r.healMs} ms`}; after settling ${pct(r.connectedAfterHeal)}, ` +
      `symmetric ${pct(r.symmetricAfterHeal)}, active min ${r.activeMinAfterHeal} mean ${r.activeMeanAfterHeal}, leaked links ${r.leakedLinksAfterHeal}`,
    `traffic          ${r.messages} messages: ${Object.entries(r.messagesByType).map(([t, n]) => `${t.replace('hpv.', '')} ${n}`).join(', ')}; ${r.announces} announces`,
    `time             ${(r.simMs / 1000).toFixed(1)} s simulated in ${(r.wallMs / 1000).toFixed(1)} s`,
  ].join('\n');
}

try {
  const { opts, json } = parse(process.argv.slice(2));
  const report = runOverlayScenario(opts);
  console.log(json ? JSON.stringify(report) : summary(report));
} catch (e) {
  console.error(`sim: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(2);
}
