/** Types shared by the bench's Node side and its page-side code. */
import type * as Y from 'yjs';
import type { WebrtcProvider } from 'y-webrtc';

/** `window.bench` on the Yjs page (scripts/bench/yjs-page/main.ts). */
export interface YjsBenchGlobal {
  Y: typeof Y;
  doc: Y.Doc;
  provider: WebrtcProvider;
  chat: Y.Array<string>;
  kv: Y.Map<string>;
}

export type SystemKind = 'ours' | 'yjs';

export interface RtcBytes {
  /** Sum over this tab's RTCPeerConnections of transport `bytesSent` (DTLS/SCTP payload on the wire). */
  transport: number;
  /** Sum of data-channel `bytesSent` (application payload). */
  dataChannel: number;
  /** Connections ever created / now in 'connected' state. */
  created: number;
  connected: number;
}

/**
 * `window.__ba`: one interface over both systems, installed in every tab by
 * `pageInit` (scripts/bench/page.ts) so the scenarios are the same code for both.
 */
export interface PageAdapter {
  kind: SystemKind;
  /** Wall-clock ms with sub-ms resolution: performance.timeOrigin + performance.now(). */
  now(): number;
  /** When this tab first saw the cluster complete (see pageInit), or null. */
  joinedAt: number | null;
  /** Members as this tab sees them, itself included (Yjs: connected and synced peers + 1). */
  members(): number;
  /** Chat text → first arrival time at this tab. */
  chatArrivals: Map<string, number>;
  chatSend(text: string): Promise<void>;
  /** True when put/get complete synchronously (Yjs: local document operations). */
  sync: boolean;
  put(key: string, value: string): Promise<void>;
  get(key: string): Promise<unknown>;
  /** Many keys at once, in the order given: `{v}` per key, null for a key whose read failed (ours: p2p.kv.getMany; Yjs: local reads). */
  getMany(keys: string[]): Promise<({ v: unknown } | null)[]>;
  /** Keys held by this tab (ours: its replicas; Yjs: the whole map). */
  localCount(): number;
  localKeys(prefix: string): string[];
  /** Resolves with the time this tab first reads `value` under `key` (ours: polls kv.get; Yjs: observes the Y.Map). */
  waitVisible(key: string, value: string, timeoutMs: number): Promise<number | null>;
  rtcBytes(): Promise<RtcBytes>;
}

declare global {
  interface Window {
    __ba?: PageAdapter;
    bench?: YjsBenchGlobal;
  }
}
