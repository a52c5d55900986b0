/** Traffic counters from `stats()`, polled every second and turned into per-second rates. */
import type { P2PApi } from '../../runtime/api';
import { errorMessage } from '../lib/format';
import { classify } from '../lib/stat-names';
import { subscribe } from './poll';

export const HISTORY = 60;

export interface Series {
  /** Per-second rate, oldest first, at most HISTORY samples. */
  rates: number[];
  total: number;
}
export interface TypeRow {
  type: string;
  in: Series;
  out: Series;
}
export interface StatsView {
  msgsIn: Series;
  msgsOut: Series;
  bytesIn: Series;
  bytesOut: Series;
  drops: Series;
  byType: TypeRow[];
  dropKinds: { type: string; total: number }[];
  other: { key: string; value: number }[];
}

const empty = (): Series => ({ rates: [], total: 0 });

export class StatsState {
  view = $state.raw<StatsView>({ msgsIn: empty(), msgsOut: empty(), bytesIn: empty(), bytesOut: empty(), drops: empty(), byType: [], dropKinds: [], other: [] });
  error = $state<string | null>(null);

  private shown = true;
  /** Samples taken while off screen, not yet in `view`. */
  private pending = false;
  private last: { agg: Record<string, [number, number]>; types: Map<string, { in: [number, number]; out: [number, number] }>; dropKinds: { type: string; total: number }[]; other: { key: string; value: number }[] } | null = null;
  private prev: Record<string, number> | null = null;
  private prevAt = 0;
  private series = new Map<string, number[]>();

  private readonly node: P2PApi;

  constructor(node: P2PApi) {
    this.node = node;
    this.sample();
  }

  connect(): () => void {
    return subscribe(this.node, null, () => this.sample());
  }

  /**
   * Whether the traffic view is on screen (the panel sets it from an IntersectionObserver).
   * Off screen the samples are still taken, so rates and history stay right, but `view`
   * (and with it every tile and sparkline) is only rebuilt while someone can see it.
   */
  setShown(shown: boolean): void {
    if (shown === this.shown) return;
    this.shown = shown;
    if (shown && this.pending) this.publish();
  }

  sample(): void {
    let raw: Record<string, number>;
    try {
      raw = this.node.stats();
      this.error = null;
    } catch (e) {
      this.error = `Could not read stats: ${errorMessage(e)}`;
      return;
    }
    const now = performance.now();
    const dt = this.prev ? Math.max(0.001, (now - this.prevAt) / 1000) : 0;
    const push = (name: string, rate: number) => {
      const s = this.series.get(name) ?? [];
      s.push(rate);
      if (s.length > HISTORY) s.shift();
      this.series.set(name, s);
    };
    const agg = { msgIn: [0, 0], msgOut: [0, 0], bytesIn: [0, 0], bytesOut: [0, 0], drop: [0, 0] } as Record<string, [number, number]>;
    const types = new Map<string, { in: [number, number]; out: [number, number] }>();
    const dropKinds: { type: string; total: number }[] = [];
    const other: { key: string; value: number }[] = [];
    for (const [key, value] of Object.entries(raw)) {
      if (typeof value !== 'number' || !Number.isFinite(value)) continue;
      const before = this.prev?.[key];
      const rate = dt && before !== undefined ? Math.max(0, (value - before) / dt) : 0;
      const c = classify(key);
      const add = (name: string) => {
        const a = agg[name]!;
        a[0] += rate;
        a[1] += value;
      };
      if (c.kind === 'msg' && c.dir) {
        add(c.dir === 'in' ? 'msgIn' : 'msgOut');
        const t = types.get(c.type) ?? { in: [0, 0], out: [0, 0] };
        t[c.dir][0] += rate;
        t[c.dir][1] += value;
        types.set(c.type, t);
      } else if (c.kind === 'bytes' && c.dir) add(c.dir === 'in' ? 'bytesIn' : 'bytesOut');
      else if (c.kind === 'drop') {
        add('drop');
        dropKinds.push({ type: c.type || key, total: value });
      } else other.push({ key, value });
    }
    if (dt) {
      for (const [name, [rate]] of Object.entries(agg)) push(name, rate);
      for (const [type, t] of types) {
        push(`in:${type}`, t.in[0]);
        push(`out:${type}`, t.out[0]);
      }
    }
    this.last = { agg, types, dropKinds, other };
    this.prev = raw;
    this.prevAt = now;
    if (this.shown) this.publish();
    else this.pending = true;
  }

  /** Builds `view` from the latest sample and the history. */
  private publish(): void {
    if (!this.last) return;
    this.pending = false;
    const { agg, types, dropKinds, other } = this.last;
    const series = (name: string, total: number): Series => ({ rates: [...(this.series.get(name) ?? [])], total });
    this.view = {
      msgsIn: series('msgIn', agg.msgIn![1]),
      msgsOut: series('msgOut', agg.msgOut![1]),
      bytesIn: series('bytesIn', agg.bytesIn![1]),
      bytesOut: series('bytesOut', agg.bytesOut![1]),
      drops: series('drop', agg.drop![1]),
      byType: [...types]
        .map(([type, t]) => ({ type, in: series(`in:${type}`, t.in[1]), out: series(`out:${type}`, t.out[1]) }))
        .sort((a, b) => b.in.total + b.out.total - (a.in.total + a.out.total) || a.type.localeCompare(b.type)),
      dropKinds: dropKinds.sort((a, b) => b.total - a.total),
      other: other.sort((a, b) => a.key.localeCompare(b.key)),
    };
  }
}

/** Latest rate of a series (0 before the second sample). */
export function latest(s: Series): number {
  return s.rates.length ? s.rates[s.rates.length - 1]! : 0;
}
