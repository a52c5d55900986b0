import type { NodeId } from '../core/types';
import { SeededRng } from '../core/rng';
import { viewOf } from '../core/placement';
import { KvStore, storageKey, validateKvMessage, type Entry, type KvConfig, type KvEvent, type KvIn, type KvMessage, type KvOut, type KvReply, type KvTimer } from '../core/kv';
import { Network, type Adapter } from './network';
import { meshConfig, meshIds, type DistributiveOmit, type MeshOptions } from './mesh';

/** A client request to a KvStore, without its `req` (the network numbers it). */
export type KvCall = DistributiveOmit<Extract<KvIn, { req: number }>, 'req'>;

/**
 * KvStore alone on the network: messages are validated at the sender (a node sending an
 * invalid message fails the run) and cloned per delivery (no objects shared between
 * nodes, as on a real wire); the network is the membership oracle; the disk holds the
 * store's entries; flush follows any input that leaves writes held (`deferFlush`).
 */
export const kvAdapter: Adapter<KvIn, KvOut, KvStore, KvCall> = {
  encode(from, msg) {
    const bad = validateKvMessage(msg);
    if (bad) throw new Error(`node ${from} sent an invalid message (${bad}): ${JSON.stringify(msg).slice(0, 200)}`);
    return msg;
  },
  message: (from, msg) => ({ type: 'message', from, msg: structuredClone(msg as KvMessage) }),
  timer: (timer) => ({ type: 'timer', timer: timer as KvTimer }),
  members: (ids) => ({ type: 'members', view: viewOf(ids) }),
  storageKey: (record) => storageKey(record as Entry),
  load: (records) => ({ type: 'load', records: records as Entry[] }),
  request: (req, call) => ({ ...call, req }) as KvIn,
  flush: { pending: (store) => store.needsFlush(), input: { type: 'flush' } },
};

export interface KvNetOptions extends MeshOptions {
  config?: Partial<KvConfig>;
}

/**
 * A formed cluster of KvStores (everybody knows everybody from the start) on a 'mesh'
 * network, with the KV client calls as methods. A node's store is seeded by the run's
 * seed, its id and its incarnation, so a restart draws fresh randomness.
 */
export class KvNet extends Network<KvIn, KvOut, KvStore, KvCall> {
  private readonly eventListeners: ((node: NodeId, event: KvEvent, now: number) => void)[];

  constructor(opts: KvNetOptions) {
    const listeners: ((node: NodeId, event: KvEvent, now: number) => void)[] = [];
    super(
      {
        ...kvAdapter,
        onEffect: (node, effect, now) => {
          if (effect.type === 'event') for (const l of listeners) l(node, effect.event, now);
        },
      },
      meshConfig(opts),
      (id, incarnation) => new KvStore(id, { ...opts.config }, new SeededRng(`${opts.seed}/${id}/${incarnation}`)),
    );
    const ids = meshIds(opts.nodes);
    for (const id of ids) this.add(id);
    for (const id of ids) this.tellMembers(id);
    this.eventListeners = listeners;
  }

  /** Calls `listener` with every event a store emits (changed, watch, watchResync). */
  onEvent(listener: (node: NodeId, event: KvEvent, now: number) => void): void {
    this.eventListeners.push(listener);
  }

  /** Sets `id`'s watched prefixes (the whole set). */
  watch(id: NodeId, prefixes: string[]): KvReply {
    return this.kvCall(id, { type: 'watch', prefixes });
  }

  store(id: NodeId): KvStore {
    const s = this.node(id);
    if (!s) throw new Error(`no node ${id}`);
    return s;
  }

  /** Every node stops and starts again from its disk (all tabs reloaded). */
  restartAll(): void {
    const ids = this.allIds().filter((id) => this.members().includes(id) || this.isAlive(id));
    this.crash(ids, { silent: true });
    for (const id of ids) this.restart(id);
  }

  /** Issue a request and run until its reply; throws if it hangs (no reply within 3 request timeouts). */
  kvCall(id: NodeId, call: KvCall): KvReply {
    return this.call(id, call, 3 * this.store(id).config.requestTimeoutMs + 1000);
  }

  put(id: NodeId, key: string, value: unknown): KvReply {
    return this.kvCall(id, { type: 'put', key, value });
  }
  /** Replies the value. */
  get(id: NodeId, key: string): KvReply {
    return this.kvCall(id, { type: 'get', key });
  }
  /** Replies `{ value, version }`, undefined when absent or deleted. */
  inspect(id: NodeId, key: string): KvReply {
    return this.kvCall(id, { type: 'inspect', key });
  }
  del(id: NodeId, key: string): KvReply {
    return this.kvCall(id, { type: 'delete', key });
  }
  /** Replies the sorted key list. */
  keys(id: NodeId, prefix = ''): KvReply {
    return this.kvCall(id, { type: 'keys', prefix });
  }

  /** Live nodes whose local replica has `key` (tombstones included). */
  holders(key: string): NodeId[] {
    return this.liveIds().filter((id) => this.store(id).localEntry(key) !== undefined).sort();
  }

  /** A random live node (drawn from the network's Rng). */
  anyLive(): NodeId {
    const live = this.liveIds();
    return live[Math.floor(this.rng.next() * live.length)]!;
  }
}
