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
 *   --loss P [0]            --link-latency MS or MIN-MAX [10-100]
 *   --json (one JSON object on stdout)
 *
 * Broadcasts (HyParView + Plumtree; see src/sim/README.md, "Broadcast measurements"):
 *   --broadcasts B [0: overlay only]   B broadcasts per batch: before the crash (after a
 *       warm-up broadcast per origin), right after it, when the survivors reconnect, and
 *       twice after the heal settle
 *   --origins K [ceil(B/2)] distinct origins of the pre-crash and of the after-crash batch
 *       (their B broadcasts go round-robin over them; each origin costs a warm-up flood)
 *   --broadcast-gap MS [10] (between the broadcasts of a batch)
 *
 *   npx tsx scripts/sim.ts --nodes 10000 --fail 0.5 --broadcasts 50 --json
 *
 * Idle cost of a formed cluster of whole CoreNodes (src/sim/idle.ts; see src/sim/README.md,
 * "Idle cost"): N nodes join, K keys and a few chat messages are written, the cluster
 * settles, then messages and bytes per node per second are counted over a quiet window.
 *   --idle                  this scenario instead of the overlay one
 *   --nodes N [100]         --seed S [1]             --join-gap MS [300]
 *   --keys K [1000]         --chats C [10]           --settle MS [300000]
 *   --window MS [600000]    --top T [8] (message types listed)
 *
 *   npx tsx scripts/sim.ts --idle --nodes 1000 --json
 */
import { runBroadcastScenario, runOverlayScenario, type BroadcastReport, type BroadcastScenario, type OverlayReport } from '../src/sim';
import { idleSummary, runIdleScenario, type IdleScenario } from '../src/sim/idle';

const NUM_FLAGS: Record<string, keyof IdleScenario> = {
  '--nodes': 'nodes',
  '--seed': 'seed',
  '--join-gap': 'joinGapMs',
  '--keys': 'keys',
  '--chats': 'chats',
  '--settle': 'settleMs',
  '--window': 'windowMs',
  '--top': 'topTypes',
};

function parseIdle(argv: string[]): { opts: Partial<IdleScenario>; json: boolean } {
  const opts: Record<string, number> = {};
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--idle') continue;
    if (a === '--json') {
      json = true;
      continue;
    }
    const key = NUM_FLAGS[a];
    if (key === undefined) throw new Error(`unknown option with --idle: ${a}`);
    const v = argv[++i];
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < 0) throw new Error(`${a} needs a non-negative number`);
    opts[key] = n;
  }
  return { opts: opts as Partial<IdleScenario>, json };
}

function parse(argv: string[]): { opts: Partial<BroadcastScenario>; json: boolean } {
  const opts: Partial<BroadcastScenario> = {};
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
      case '--broadcasts': opts.broadcasts = num(a, v); break;
      case '--origins': opts.origins = num(a, v); break;
      case '--broadcast-gap': opts.broadcastGapMs = num(a, v); break;
      case '--link-latency': {
        // MS (every link) or MIN-MAX (uniform, drawn once per link)
        const [lo, hi] = (v ?? '').split('-');
        const min = num(a, lo);
        opts.network = { ...opts.network, linkLatency: hi === undefined ? min : { min, max: num(a, hi) } };
        break;
      }
      default: throw new Error(`unknown option ${a}`);
    }
    i++;
  }
  if (opts.nodes !== undefined && (opts.nodes < 1 || !Number.isInteger(opts.nodes))) throw new Error('--nodes must be a positive integer');
  if (opts.fail !== undefined && (opts.fail < 0 || opts.fail >= 1)) throw new Error('--fail must be in [0, 1)');
  if (opts.broadcasts !== undefined && (opts.broadcasts < 0 || !Number.isInteger(opts.broadcasts))) throw new Error('--broadcasts must be a non-negative integer');
  if (opts.broadcastGapMs !== undefined && opts.broadcastGapMs < 0) throw new Error('--broadcast-gap must be >= 0');
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

function broadcastSummary(r: BroadcastReport): string {
  const pct = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(2)}%`);
  return [
    `broadcasts       ${r.broadcasts} per batch from ${r.origins} origins, ${r.broadcastGapMs} ms apart; ${r.broadcastsSent} sent in all; duplicates ${r.duplicates}; overlay diameter ${r.diameter} (origin eccentricity mean ${r.originEccentricityMean})`,
    `warm-up (floods) reliability ${pct(r.reliabilityWarmup)}, RMR ${r.rmrWarmup}, LDH max ${r.ldhWarmupMax} mean ${r.ldhWarmupMean}`,
    `settled          reliability ${pct(r.reliability)}, RMR ${r.rmr} (max ${r.rmrMax}), LDH max ${r.ldh} mean ${r.ldhMean}, delivery p50 ${r.deliveryMsP50} ms p99 ${r.deliveryMsP99} ms max ${r.deliveryMsMax} ms`,
    `after the crash  reliability (tree) min ${pct(r.reliabilityAfterFailure)} mean ${pct(r.reliabilityAfterFailureMean)}; eventual (tree + anti-entropy, end of heal settle) min ${pct(r.reliabilityAfterFailureEventual)}; reachable (origin's component) min ${pct(r.reachableAfterFailure)} mean ${pct(r.reachableAfterFailureMean)}; ` +
      `delivered within reach ${pct(r.reliabilityAfterFailureOfReachable)}; delivery p50 ${r.deliveryMsAfterFailureP50} ms p99 ${r.deliveryMsAfterFailureP99} ms max ${r.deliveryMsAfterFailureMax} ms; RMR ${r.rmrAfterFailure}, LDH ${r.ldhAfterFailure}`,
    `at heal          reliability ${pct(r.reliabilityAtHeal)}, delivery p50 ${r.deliveryMsAtHealP50} ms p99 ${r.deliveryMsAtHealP99} ms max ${r.deliveryMsAtHealMax} ms; RMR ${r.rmrAtHeal}, LDH ${r.ldhAtHeal}`,
    `after heal       repair round: reliability ${pct(r.reliabilityRepair)}, RMR ${r.rmrRepair}; re-settled: reliability ${pct(r.reliabilityResettled)}, RMR ${r.rmrResettled}, LDH max ${r.ldhResettled} mean ${r.ldhResettledMean} (diameter ${r.diameterAfterHeal})`,
  ].join('\n');
}

try {
  const argv = process.argv.slice(2);
  if (argv.includes('--idle')) {
    const { opts, json } = parseIdle(argv);
    const report = runIdleScenario({ ...opts, log: (line) => console.error(`sim: ${line}`) });
    console.log(json ? JSON.stringify(report) : idleSummary(report));
    process.exit(0);
  }
  const { opts, json } = parse(argv);
  if (opts.broadcasts) {
    const report = runBroadcastScenario(opts);
    console.log(json ? JSON.stringify(report) : `${summary(report)}\n${broadcastSummary(report)}`);
  } else {
    const report = runOverlayScenario(opts);
    console.log(json ? JSON.stringify(report) : summary(report));
  }
} catch (e) {
  console.error(`sim: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(2);
}
