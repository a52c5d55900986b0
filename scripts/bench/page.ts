/**
 * Code that runs inside the benchmark tabs. `pageInit` is registered with
 * `context.addInitScript`, so it runs before the page's own scripts:
 *  - it wraps `window.RTCPeerConnection` to keep a list of every connection the page
 *    creates (simple-peer, used by both systems, looks the constructor up when it
 *    creates a peer), for `getStats()` byte counts and connection counts;
 *  - once the app's global exists (`window.p2p` or `window.bench`) it installs
 *    `window.__ba` (types.ts: PageAdapter) and records the moment the tab has joined.
 *
 * Playwright serialises these functions with `toString()`, so they must not use
 * anything from the enclosing module. tsx (esbuild) inserts `__name(...)` calls into
 * functions; NAME_SHIM defines it in the page first.
 */
import type { PageAdapter, RtcBytes, SystemKind } from './types';

export const NAME_SHIM = 'globalThis.__name = globalThis.__name || ((f) => f);';

export interface PageInitArg {
  kind: SystemKind;
  /** Cluster size (this tab included) at which the tab counts as joined. */
  expect: number;
}

export function pageInit(arg: PageInitArg): void {
  const now = (): number => performance.timeOrigin + performance.now();
  const w = window as unknown as Record<string, unknown>;

  // --- every RTCPeerConnection, for getStats() ---
  const pcs: RTCPeerConnection[] = [];
  const last = new Map<RTCPeerConnection, { transport: number; dataChannel: number }>();
  const Orig = window.RTCPeerConnection;
  if (typeof Orig === 'function') {
    class Tracked extends Orig {
      constructor(config?: RTCConfiguration) {
        super(config);
        pcs.push(this);
      }
    }
    w.RTCPeerConnection = Tracked;
    w.webkitRTCPeerConnection = Tracked;
  }
  const rtcBytes = async (): Promise<RtcBytes> => {
    let transport = 0;
    let dataChannel = 0;
    let connected = 0;
    for (const pc of pcs) {
      if (pc.connectionState === 'connected') connected++;
      let cur = last.get(pc) ?? { transport: 0, dataChannel: 0 };
      if (pc.connectionState !== 'closed') {
        try {
          const report = await pc.getStats();
          const next = { transport: 0, dataChannel: 0 };
          report.forEach((s: { type: string; bytesSent?: number }) => {
            if (s.type === 'transport') next.transport += s.bytesSent ?? 0;
            if (s.type === 'data-channel') next.dataChannel += s.bytesSent ?? 0;
          });
          // counters only grow; a connection torn down mid-way keeps its last reading
          cur = { transport: Math.max(cur.transport, next.transport), dataChannel: Math.max(cur.dataChannel, next.dataChannel) };
          last.set(pc, cur);
        } catch {
          // closed between the state check and getStats: keep the last reading (cur)
        }
      }
      transport += cur.transport;
      dataChannel += cur.dataChannel;
    }
    return { transport, dataChannel, created: pcs.length, connected };
  };

  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const chatArrivals = new Map<string, number>();
  const arrived = (text: string, t: number): void => {
    if (!chatArrivals.has(text)) chatArrivals.set(text, t);
  };

  const makeOurs = (): PageAdapter => {
    const p2p = window.p2p;
    p2p.on((e) => {
      if (e.type === 'chat') arrived(e.message.text, now());
    });
    return {
      kind: 'ours',
      now,
      joinedAt: null,
      members: () => p2p.members().length,
      chatArrivals,
      chatSend: (text) => p2p.chat.send(text),
      sync: false,
      put: (k, v) => p2p.kv.put(k, v),
      get: (k) => p2p.kv.get(k),
      getMany: async (keys) => (await p2p.kv.getMany(keys)).map((r) => (r.error === undefined ? { v: r.value } : null)),
      localCount: () => p2p.stats()['kv.localKeys'] ?? 0,
      localKeys: (prefix) => p2p.kv.localKeys().filter((k) => k.startsWith(prefix)),
      waitVisible: async (k, v, timeoutMs) => {
        const until = now() + timeoutMs;
        while (now() < until) {
          try {
            if ((await p2p.kv.get(k)) === v) return now();
          } catch {
            await sleep(1); // a failed read (timeout, no quorum): ask again
          }
        }
        return null;
      },
      rtcBytes,
    };
  };

  const makeYjs = (): PageAdapter => {
    const b = window.bench!;
    b.chat.observe((ev) => {
      const t = now();
      for (const d of ev.changes.delta) if (Array.isArray(d.insert)) for (const x of d.insert) arrived(String(x), t);
    });
    const waiters = new Map<string, Array<(t: number) => void>>();
    b.kv.observe((ev) => {
      if (waiters.size === 0) return;
      const t = now();
      for (const k of ev.keysChanged) {
        const ws = waiters.get(k);
        if (ws) {
          waiters.delete(k);
          for (const f of ws) f(t);
        }
      }
    });
    // y-webrtc marks a connection `synced` only while the room is not yet synced (its
    // SyncStep2 handler checks `!room.synced`), so connections that open after the first
    // sync never get the flag: count open connections, and require the room to have
    // synced once (pageInit's join condition).
    const members = (): number => {
      const room = b.provider.room;
      if (!room) return 0;
      let n = 1;
      room.webrtcConns.forEach((c) => {
        if (c.connected) n++;
      });
      return n;
    };
    return {
      kind: 'yjs',
      now,
      joinedAt: null,
      members,
      chatArrivals,
      chatSend: async (text) => {
        b.chat.push([text]);
      },
      sync: true,
      put: async (k, v) => {
        b.kv.set(k, v);
      },
      get: async (k) => b.kv.get(k),
      getMany: async (keys) => keys.map((k) => ({ v: b.kv.get(k) })),
      localCount: () => b.kv.size,
      localKeys: (prefix) => [...b.kv.keys()].filter((k) => k.startsWith(prefix)),
      waitVisible: (k, v, timeoutMs) => {
        if (b.kv.get(k) === v) return Promise.resolve(now());
        return new Promise((resolve) => {
          const timer = setTimeout(() => resolve(null), timeoutMs);
          const ws = waiters.get(k) ?? [];
          ws.push((t) => {
            clearTimeout(timer);
            resolve(t);
          });
          waiters.set(k, ws);
        });
      },
      rtcBytes,
    };
  };

  // --- install the adapter once the app's global exists, then watch for "joined" ---
  const install = async (): Promise<void> => {
    const deadline = now() + 120_000;
    const present = (): boolean => (arg.kind === 'ours' ? w.p2p !== undefined : w.bench !== undefined);
    while (!present()) {
      if (now() > deadline) return;
      await sleep(2);
    }
    const a = arg.kind === 'ours' ? makeOurs() : makeYjs();
    window.__ba = a;
    if (arg.kind === 'ours') await window.p2p.ready;
    let docSynced = false;
    if (arg.kind === 'yjs') {
      window.bench!.provider.on('synced', (e: { synced: boolean }) => {
        if (e.synced) docSynced = true;
      });
    }
    // ours: p2p.ready and members() complete. Yjs: connected to every other tab and the
    // document synced (SyncStep2 received); the first tab: its signaling socket is open.
    const joined = (): boolean => {
      if (a.members() < arg.expect) return false;
      if (arg.kind === 'ours') return true;
      const p = window.bench!.provider;
      if (arg.expect === 1) return p.signalingConns.some((c) => c.connected);
      return docSynced || p.room?.synced === true;
    };
    while (now() < deadline) {
      if (joined()) {
        a.joinedAt = now();
        return;
      }
      await sleep(2);
    }
  };
  void install();
}
