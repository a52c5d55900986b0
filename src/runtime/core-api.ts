/**
 * The part of the P2PApi that reads the core (`CoreQueries`) and calls it (API calls as
 * core requests, requests.ts): views, chat, KV and segments. One implementation for the
 * browser node (node.ts) and for the simulated tabs of the UI's mock (ui/mock-node.ts).
 */
import type { ApiCall, CoreQueries } from '../core/node';
import { nickError } from '../core/chat';
import { MAX_GET_MANY, type ChatApi, type ChatMessage, type KvApi, type KvGetResult, type MemberView, type NodeEvent, type P2PApi, type SegmentsApi } from './api';
import { KvWatches } from './kv-watch';

/** Keys of one kv.getMany call read together (one batch per replica). */
const GET_MANY_WINDOW = 200;
/** Windows of one kv.getMany call in flight at once. */
const GET_MANY_WINDOWS = 2;

export interface CoreApiDeps {
  query: CoreQueries;
  /** One request to the core; `timeout`: see RequestTracker.call (absent: the node's API timeout). */
  call<T>(call: ApiCall, timeout?: number | null, signal?: AbortSignal): Promise<T>;
  /** The rooms this node joined changed (a join or leave succeeded). */
  roomsChanged(): Promise<void>;
  /** The core took a new nickname (setNick succeeded). */
  nickChanged(): Promise<void>;
  /** setNick's core call failed after setNick returned (also: kv.watch listener errors). */
  error(where: string, e: unknown): void;
  /** The node's event stream (kv.watch listens to it). */
  on(listener: (e: NodeEvent) => void): () => void;
}

export type CoreApi = Pick<P2PApi, 'peers' | 'passive' | 'members' | 'memberViews' | 'chat' | 'kv' | 'segments'>;

export function coreApi(d: CoreApiDeps): CoreApi {
  const { query, call } = d;

  const chat: ChatApi = {
    send: (text: string, room = query.chat.defaultRoom()): Promise<void> => call<void>({ type: 'chat.send', room, text }),
    tell: (nick: string, text: string): Promise<void> => call<void>({ type: 'chat.tell', nick, text }),
    history: (room = query.chat.defaultRoom()): ChatMessage[] => query.chat.history(room),
    join: async (room: string): Promise<void> => {
      await call<void>({ type: 'chat.join', room });
      await d.roomsChanged();
    },
    leave: async (room: string): Promise<void> => {
      await call<void>({ type: 'chat.leave', room });
      await d.roomsChanged();
    },
    rooms: (): string[] => query.chat.rooms(),
    joined: (): string[] => query.chat.joined(),
    members: (room = query.chat.defaultRoom()): string[] => query.chat.members(room),
    /** Throws a clear error for an invalid nickname; nothing changes then. */
    setNick: (nick: string): void => {
      const err = nickError(nick);
      if (err) throw new Error(err);
      void call<void>({ type: 'chat.nick', nick }).then(
        () => d.nickChanged(),
        (e: unknown) => d.error('setNick', e),
      );
    },
  };

  const watches = new KvWatches({ call: (c) => call(c), on: d.on, error: d.error });
  const kv: KvApi = {
    watch: (prefix, listener, opts) => watches.watch(prefix, listener, opts),
    put: (key: string, value: unknown): Promise<void> => call<void>({ type: 'kv.put', key, value }),
    get: (key: string): Promise<unknown> => call<unknown>({ type: 'kv.get', key }),
    getMany: async (keys: string[]): Promise<KvGetResult[]> => {
      if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) throw new Error('getMany: keys must be an array of strings');
      const distinct = [...new Set(keys)];
      if (distinct.length > MAX_GET_MANY) throw new Error(`getMany: at most ${MAX_GET_MANY} distinct keys per call (got ${distinct.length})`);
      const read = (key: string): Promise<KvGetResult> =>
        call<unknown>({ type: 'kv.get', key }).then(
          (value): KvGetResult => ({ key, value }),
          (e: unknown): KvGetResult => ({ key, error: e instanceof Error ? e.message : String(e) }),
        );
      // windows of GET_MANY_WINDOW keys, GET_MANY_WINDOWS in flight: each window's reads start
      // in one turn (the core batches them per replica, kv.gets / kv.heads), and the replicas
      // never hold more of this call than that, so none looks late for a request still queued
      // behind thousands of others (a late replica is re-asked: work added to a busy cluster)
      const byKey = new Map<string, KvGetResult>();
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < distinct.length) {
          const window = distinct.slice(next, (next += GET_MANY_WINDOW));
          for (const r of await Promise.all(window.map(read))) byKey.set(r.key, r);
        }
      };
      await Promise.all(Array.from({ length: GET_MANY_WINDOWS }, lane));
      return keys.map((k) => byKey.get(k)!);
    },
    delete: (key: string): Promise<void> => call<void>({ type: 'kv.delete', key }),
    keys: (prefix = ''): Promise<string[]> => call<string[]>({ type: 'kv.keys', prefix }),
    replicas: (key: string): string[] => query.kv.replicas(key),
    replication: () => query.kv.replication(),
    localKeys: (): string[] => query.kv.localKeys(),
    inspect: async (key: string) => {
      const r = await call<{ value: unknown; version: { ts: number; node: string } } | undefined>({ type: 'kv.inspect', key });
      return r === undefined ? undefined : { key, value: r.value, version: r.version, replicas: query.kv.replicas(key) };
    },
  };

  const segments: SegmentsApi = {
    put: (key: string, value: unknown): Promise<number> => call<number>({ type: 'seg.put', key, value }),
    update: (key: string, value: unknown): Promise<number> => call<number>({ type: 'seg.update', key, value }),
    peek: (key: string, afterId = 0, o: { signal?: AbortSignal; timeoutMs?: number } = {}) =>
      call<{ id: number; value: unknown }>({ type: 'seg.peek', key, afterId, timeoutMs: o.timeoutMs }, o.timeoutMs === undefined ? null : o.timeoutMs + 5_000, o.signal),
    take: (key: string, afterId = 0, o: { signal?: AbortSignal; timeoutMs?: number } = {}) =>
      call<{ id: number; value: unknown }>({ type: 'seg.take', key, afterId, timeoutMs: o.timeoutMs }, o.timeoutMs === undefined ? null : o.timeoutMs + 5_000, o.signal),
    replicas: (key: string): string[] => query.segments.replicas(key),
  };

  return {
    peers: () => query.overlay.active(),
    passive: () => query.overlay.passive(),
    members: () => query.members.live(),
    memberViews: (): MemberView[] =>
      query.members.all().map((m) => ({
        id: m.id,
        nick: m.nick,
        status: m.status,
        incarnation: m.incarnation,
        active: m.active,
        rooms: Array.isArray(m.meta.rooms) ? (m.meta.rooms as string[]) : [],
      })),
    chat,
    kv,
    segments,
  };
}
