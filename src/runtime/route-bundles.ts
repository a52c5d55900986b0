import type { WireMessage } from '../core/node';
import { encode } from '../wire/codec';

/**
 * Our routed envelopes, signed in bundles (issue #18, the KV put path).
 *
 * Every routed envelope we send is signed (seals.ts, `sealRoute`): one Ed25519 signature
 * at the source and one verification at the destination. Under a pipelined load the core
 * emits them one at a time (each put, once its entry is sealed, writes to its replicas
 * alone; each acknowledgement leaves when its write is on disk), so a writer signed about
 * four envelopes per put and its replicas verified as many.
 *
 * Here the envelopes to one destination through one next hop wait while an envelope of
 * theirs is being signed, and the ones that gathered are then signed together as one
 * envelope: its signed bytes are the messages back to back, as in a frame (wire/codec.ts
 * `decodeAll`). Nothing waits on a timer: a lone envelope is signed in the microtask
 * after the turn that sent it (so the messages of one turn go together), and the bundles
 * grow only while signatures are the bottleneck. At most ROUTE_BUNDLE_MAX messages or
 * ROUTE_BUNDLE_MAX_BYTES of them go in one envelope.
 *
 * Order: the envelopes of one (next hop, destination) leave in the order they were sent;
 * envelopes to other destinations may overtake a bundle still gathering, as they may take
 * other paths anyway.
 */
export const ROUTE_BUNDLE_MAX = 128;
export const ROUTE_BUNDLE_MAX_BYTES = 64 * 1024;

export interface RouteOut {
  src: string;
  dst: string;
  ttl: number;
  msg: unknown;
}

/** Signs `parts` (encoded messages, in order) as one envelope from src to dst. */
export type SealParts = (src: string, dst: string, ttl: number, parts: Uint8Array[]) => Promise<WireMessage>;
/** Hands a sealed envelope (still being signed) to the link `to`, in link order. */
export type PushSealed = (to: string, sealed: Promise<WireMessage>, transient: boolean) => void;

interface Bundle {
  parts: Uint8Array[];
  bytes: number;
}

export class RouteBundles {
  /** Per key, the bundle still gathering (its signature not started). */
  private readonly gathering = new Map<string, Bundle>();
  /** Per key, the signature under way; the next bundle starts after it. */
  private readonly signing = new Map<string, Promise<unknown>>();

  constructor(
    private readonly seal: SealParts,
    private readonly push: PushSealed,
  ) {}

  add(to: string, env: RouteOut, transient: boolean): void {
    const key = `${to}\n${env.src}\n${env.dst}\n${env.ttl}\n${transient ? 1 : 0}`;
    const part = encode(env.msg);
    const open = this.gathering.get(key);
    if (open && open.parts.length < ROUTE_BUNDLE_MAX && open.bytes + part.byteLength <= ROUTE_BUNDLE_MAX_BYTES) {
      open.parts.push(part);
      open.bytes += part.byteLength;
      return;
    }
    const bundle: Bundle = { parts: [part], bytes: part.byteLength };
    this.gathering.set(key, bundle);
    const before = this.signing.get(key) ?? Promise.resolve();
    const sealed = before.then(() => {
      if (this.gathering.get(key) === bundle) this.gathering.delete(key);
      return this.seal(env.src, env.dst, env.ttl, bundle.parts);
    });
    const done = sealed.then(
      () => undefined,
      () => undefined,
    );
    this.signing.set(key, done);
    void done.then(() => {
      if (this.signing.get(key) === done) this.signing.delete(key);
    });
    this.push(to, sealed, transient);
  }
}
