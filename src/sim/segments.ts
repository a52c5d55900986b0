import type { NodeId } from '../core/types';
import { SeededRng } from '../core/rng';
import { viewOf } from '../core/placement';
import { Segments, storageKey, validateSegMessage, type SegIn, type SegMessage, type SegmentsConfig, type SegOut, type SegRecord, type SegReply, type SegTimer } from '../core/segments';
import { Network, type Adapter } from './network';
import { meshConfig, meshIds, type DistributiveOmit, type MeshOptions } from './mesh';

/** A client request to Segments, without its `req` (the network numbers it); cancel goes through `cancel()`. */
export type SegCall = DistributiveOmit<Extract<SegIn, { req: number; key: string }>, 'req'>;

/**
 * Segments alone on the network: messages validated at the sender and cloned per
 * delivery, the network as membership oracle, the disk holding the segment records.
 */
export const segmentsAdapter: Adapter<SegIn, SegOut, Segments, SegCall> = {
  encode(from, msg) {
    const bad = validateSegMessage(msg);
    if (bad) throw new Error(`node ${from} sent an invalid message (${bad}): ${JSON.stringify(msg).slice(0, 200)}`);
    return msg;
  },
  message: (from, msg) => ({ type: 'message', from, msg: structuredClone(msg as SegMessage) }),
  timer: (timer) => ({ type: 'timer', timer: timer as SegTimer }),
  members: (ids) => ({ type: 'members', view: viewOf(ids) }),
  storageKey: (record) => storageKey(record as SegRecord),
  load: (records) => ({ type: 'load', records: records as SegRecord[] }),
  request: (req, call) => ({ ...call, req }) as SegIn,
};

export interface SegNetOptions extends MeshOptions {
  config?: Partial<SegmentsConfig>;
}

/**
 * A formed cluster of Segments nodes on a 'mesh' network, with the segment client calls
 * as methods: put and update reply the new item's id, peek and take a `SegItem`
 * `{ id, value }`.
 */
export class SegNet extends Network<SegIn, SegOut, Segments, SegCall> {
  constructor(opts: SegNetOptions) {
    super(
      segmentsAdapter,
      meshConfig(opts),
      (id, incarnation) => new Segments(id, { ...opts.config }, new SeededRng(`${opts.seed}/${id}/${incarnation}`)),
    );
    const ids = meshIds(opts.nodes);
    for (const id of ids) this.add(id);
    for (const id of ids) this.tellMembers(id);
  }

  seg(id: NodeId): Segments {
    const s = this.node(id);
    if (!s) throw new Error(`no node ${id}`);
    return s;
  }

  /** A node with an empty disk starts as `id` (new, or a crashed node's id); it learns the members at once, the others after their detection delay. */
  join(id: NodeId): void {
    if (this.isAlive(id)) throw new Error(`${id} is already up`);
    this.restart(id, undefined, { wipe: true });
  }

  /** The caller gives up on waiting request `req`. */
  cancel(id: NodeId, req: number): void {
    this.handle(id, { type: 'cancel', req });
  }

  put(id: NodeId, key: string, value: unknown): SegReply {
    return this.call(id, { type: 'put', key, value });
  }
  update(id: NodeId, key: string, value: unknown): SegReply {
    return this.call(id, { type: 'update', key, value });
  }
  peek(id: NodeId, key: string, afterId = 0, timeoutMs?: number): SegReply {
    return this.call(id, { type: 'peek', key, afterId, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  }
  take(id: NodeId, key: string, afterId = 0, timeoutMs?: number): SegReply {
    return this.call(id, { type: 'take', key, afterId, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  }

  /** The owner of `key` according to node `id` (default: the first live node). */
  ownerOf(key: string, id = this.liveIds()[0]!): NodeId {
    return this.seg(id).ownerOf(key);
  }

  /** True once every live node knows exactly the nodes up. */
  converged(): boolean {
    const up = this.members().join();
    return this.liveIds().every((id) => this.seg(id).members().join() === up);
  }
}
