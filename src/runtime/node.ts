/**
 * The browser node: runs the pure CoreNode on real time, real timers, WebRTC links,
 * the signaling servers and IndexedDB, and exposes it as the P2PApi (`window.p2p`).
 */
import { CoreNode, STORAGE_KEY, validateWire, type ApiCall, type CoreConfig, type Entry, type NodeIn, type NodeOut, type WireMessage } from '../core/node';
import { SeededRng } from '../core/rng';
import { fromWire, toWire } from '../core/wire';
import { TimerQueue, type TimerHandle } from './timers';
import { decodeAll, encode, encodedSize, fromBase64, toBase64 } from '../wire/codec';
import { SignalingPool, type WebSocketCtor, type WebSocketLike } from '../net/signaling';
import { Transport, type SimplePeerCtor } from '../net/transport';
import { loadPersisted, NodeStorage, StoreRegistry, type PersistedState } from '../storage/store';
import { validateSignal } from './signal-messages';
import { Stats } from './stats';
import type { ChatMessage, MemberView, NodeEvent, NodeInfo, P2PApi, SegmentsApi } from './api';
import { adoptOrphans, REGISTRY_TOUCH_MS } from './orphans';
import { markOnce } from './marks';
import { nickError } from '../core/chat';
import { validateSegRecord, type SegRecord } from '../core/segments';
import type { IceConfigSource } from './ice-config';
import { linkCounters, visibleLinks } from './links';
import type { LinkInfo } from '../net/transport';

export interface NodeOptions {
  id: string;
  cluster: string;
  signaling: string[];
  nick: string;
  SimplePeer: SimplePeerCtor;
  WebSocketImpl?: WebSocketCtor;
  config?: CoreConfig;
  /** Persist to IndexedDB (off in environments without it). */
  persist?: boolean;
  /** The persisted state, already being read (prefetchPersisted); loaded here when absent or null. */
  preloaded?: Promise<PersistedState | null>;
  /** Resolve `ready` as "alone" when no signaling server answered within this time. */
  aloneAfterMs?: number;
  /**
   * Nodes to rejoin through first: a reloaded tab's previous overlay neighbours. They are
   * dialled as soon as signaling is up, while the persisted state loads, and handed to
   * the overlay at start (see HyParView `start`); links the overlay does not take up are
   * closed after CONTACT_GRACE_MS.
   */
  contacts?: string[];
  /** Signaling sockets opened ahead of time, by URL (the page opens them before this code loads). */
  sockets?: Map<string, WebSocketLike>;
  /** Safety net on top of the KVS's own request timeout: no API promise hangs. */
  apiTimeoutMs?: number;
  /** ICE servers and policy of new links (ice-config.ts); none when absent. */
  ice?: IceConfigSource;
}


/** Contacts (NodeOptions.contacts) dialled before start; the overlay asks the others itself. */
const PREDIAL = 2;
/** How long a contact's link (NodeOptions.contacts) may stay open without the overlay using it. */
const CONTACT_GRACE_MS = 10_000;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: TimerHandle | null;
}

export class P2PNode implements P2PApi {
  readonly id: string;
  readonly ready: Promise<void>;
  private resolveReady!: () => void;
  private state: NodeInfo['state'] = 'joining';
  private readonly core: CoreNode;
  private readonly pool: SignalingPool;
  private readonly transport: Transport;
  private readonly storage: NodeStorage | null;
  private readonly listeners = new Set<(e: NodeEvent) => void>();
  private readonly pending = new Map<number, Pending>();
  private readonly timers = new TimerQueue();
  private readonly stats_ = new Stats();
  private nick: string;
  private reqSeq = 0;
  private stopped = false;
  /** A `flush` input is queued for the end of this turn (see CoreNode.needsFlush). */
  private flushQueued = false;
  /**
   * Inputs that arrive before the persisted state is loaded (peers dial a reloaded tab at
   * once, signaling announces come in): held until `start`, then replayed in order. Before
   * this, a reloaded tab joined (and reported ready) with an empty store while IndexedDB
   * was still loading, and served reads from it.
   */
  private early: NodeIn[] | null = [];
  /** NodeOptions.contacts without this node. */
  private readonly contacts: string[];
  /** Contacts not dialled yet (dialled once signaling is up). */
  private toDial: string[];
  private readonly clusterTopic: string;
  private readonly selfTopic: string;

  constructor(private readonly opts: NodeOptions) {
    this.id = opts.id;
    this.nick = opts.nick;
    this.clusterTopic = opts.cluster;
    this.selfTopic = `${opts.cluster}/${opts.id}`;
    this.ready = new Promise<void>((r) => (this.resolveReady = r));
    this.contacts = (opts.contacts ?? []).filter((c) => c !== opts.id);
    this.toDial = [...this.contacts];
    const seed = crypto.getRandomValues(new Uint32Array(1))[0]!;
    this.core = new CoreNode(opts.id, { ...opts.config, kv: { sizeOf: encodedSize, deferFlush: true, ...opts.config?.kv } }, new SeededRng(seed));
    this.storage =
      opts.persist === false
        ? null
        : new NodeStorage(
            opts.id,
            (e) => this.error('storage', e),
            () => Array.from(this.core.query.kv.entries(), (e): [string, unknown] => [e.key, e]),
          );
    this.pool = new SignalingPool(opts.signaling, opts.id, {
      WebSocketImpl: opts.WebSocketImpl,
      preopened: opts.sockets,
      onPublish: (topic, data, clients, _url, own) => this.onSignaling(topic, data, clients, own === true),
      onState: () => {
        this.emit({ type: 'signaling' });
        if (this.pool?.isOpen()) {
          markOnce('p2p:signaling');
          this.onSignalingOpen();
        }
      },
      onError: (what) => this.stats_.count(`drop.signaling`, 1, what),
    });
    this.pool.subscribe(this.clusterTopic);
    this.pool.subscribe(this.selfTopic);
    this.transport = new Transport({
      me: opts.id,
      SimplePeer: opts.SimplePeer,
      sendSignal: (to, conn, signal) => {
        markOnce('p2p:signal-out');
        this.publishTo(to, { t: 'signal', conn, signal });
      },
      onFrame: (from, bytes) => this.onFrame(from, bytes),
      onLinkUp: () => {
        markOnce('p2p:link');
        this.emit({ type: 'peers' });
      },
      onLinkDown: (peer, reason) => {
        this.stats_.count('link.down', 1, `${peer}: ${reason}`);
        this.step({ type: 'linkDown', peer });
      },
      onError: (what) => this.stats_.count('drop.signal', 1, what),
      rtcConfig: opts.ice ? () => opts.ice!.current() : undefined,
    });
    this.schedule(() => {
      if (this.state === 'joining' && !this.pool.isOpen()) this.becomeReady('alone');
    }, opts.aloneAfterMs ?? 10_000);
  }

  /** Loads persisted state, then joins. */
  async start(): Promise<void> {
    let kvEntries: Entry[] = [];
    let chatHistory: ChatMessage[] = [];
    let rooms: string[] | undefined;
    let segRecords: SegRecord[] = [];
    const loadStart = performance.now();
    if (this.storage) {
      try {
        const state = (await this.opts.preloaded) ?? (await loadPersisted(this.storage));
        segRecords = (state.segments as SegRecord[]).filter((r) => validateSegRecord(r) === null);
        kvEntries = state.kv as Entry[];
        chatHistory = state.chat as ChatMessage[];
        rooms = state.rooms;
        if (state.nick && this.nick === '') this.nick = state.nick;
      } catch (e) {
        this.error('storage load', e);
      }
    }
    markOnce('p2p:loaded');
    if (this.nick === '') this.nick = `guest-${this.id.slice(1, 5)}`;
    this.stats_.set('kv.restored', kvEntries.length);
    this.stats_.set('start.loadMs', Math.round(performance.now() - loadStart));
    const early = this.early ?? [];
    this.early = null;
    const contacts = this.contacts;
    this.step({ type: 'start', nick: this.nick, rooms, kvEntries, chatHistory, segRecords, contacts });
    if (contacts.length) this.schedule(() => this.dropUnusedContacts(contacts), CONTACT_GRACE_MS);
    for (const input of early) this.step(input);
    if (this.storage) void this.afterStart();
  }

  private async afterStart(): Promise<void> {
    const registry = new StoreRegistry();
    try {
      await registry.touch(this.id, Date.now());
      this.schedule(function touch(this: P2PNode) {
        void registry.touch(this.id, Date.now()).catch((e: unknown) => this.error('registry', e));
      }.bind(this), REGISTRY_TOUCH_MS, REGISTRY_TOUCH_MS);
      // Stores of nodes that are gone (their tab closed; ids do not outlive a tab):
      // give their data back to the cluster once we are part of it.
      await this.ready;
      const adopted = await adoptOrphans(this.id, registry, (entries) => this.adopt(entries));
      this.stats_.set('kv.adopted', adopted);
    } catch (e) {
      this.error('orphan adoption', e);
    }
  }

  /** Takes entries from an orphaned store: keep what is newer than ours, persist, then hand to the KVS. */
  private async adopt(entries: Entry[]): Promise<void> {
    const newer = entries.filter((e) => {
      const mine = this.core.query.kv.localEntry(e.key);
      return !mine || mine.version.ts < e.version.ts || (mine.version.ts === e.version.ts && mine.version.node < e.version.node);
    });
    if (newer.length === 0 || !this.storage) return;
    // the KVS first: a compaction of the KV log writes the KVS's entries, so entries put
    // in storage before the KVS holds them could be left out of it
    this.step({ type: 'adopt', entries: newer });
    for (const e of newer) this.storage.kv.put(e.key, e);
    await this.storage.kv.flush();
  }

  // --- effects ---

  private step(input: NodeIn): void {
    if (this.stopped && input.type !== 'leave') return;
    if (this.early !== null && input.type !== 'start') {
      if (input.type === 'leave') this.early = [];
      else if (this.early.length < 10_000) this.early.push(input);
      else this.stats_.count('drop.early', 1, 'input before start');
      return;
    }
    const out: NodeOut[] = [];
    try {
      this.core.handle(input, Date.now(), out);
    } catch (e) {
      // a bug in the core must not take the tab down; count it and carry on
      this.error(`core (${input.type})`, e);
    }
    for (const e of out) this.run(e);
    // replica writes of this turn go out together, once the task's other inputs (a
    // pipelining client's next puts, the rest of a frame's acks) have been handled
    if (!this.flushQueued && input.type !== 'flush' && this.core.needsFlush()) {
      this.flushQueued = true;
      queueMicrotask(() => {
        this.flushQueued = false;
        this.step({ type: 'flush' });
      });
    }
  }

  private run(e: NodeOut): void {
    switch (e.type) {
      case 'send': return this.sendFrame(e.to, e.msg, e.transient === true);
      case 'disconnect':
        this.transport.close(e.peer);
        this.emit({ type: 'peers' });
        return;
      case 'timer':
        this.schedule(() => this.step({ type: 'timer', timer: e.timer }), e.delayMs);
        return;
      case 'announce':
        markOnce('p2p:announce');
        this.pool.publish(this.clusterTopic, { t: 'announce', from: this.id, isolated: e.isolated });
        this.stats_.count('announce.out');
        return;
      case 'reply': {
        const p = this.pending.get(e.req);
        if (!p) return;
        this.pending.delete(e.req);
        p.timer?.cancel();
        if (e.ok) p.resolve(e.value);
        else p.reject(new Error(e.error));
        return;
      }
      case 'event':
        if (e.event.type === 'peers') this.checkJoined();
        if (e.event.type === 'members') this.checkJoined();
        this.emit(e.event);
        return;
      case 'persist':
        if (!this.storage) return;
        switch (e.store) {
          case 'kv':
            for (const x of e.put) this.storage.kv.put(STORAGE_KEY.kv(x), x);
            for (const k of e.remove) this.storage.kv.remove(k);
            return;
          case 'chat':
            for (const m of e.put) this.storage.chat.put(STORAGE_KEY.chat(m), m);
            for (const k of e.remove) this.storage.chat.remove(k);
            return;
          case 'seg':
            for (const r of e.put) this.storage.segments.put(STORAGE_KEY.seg(r), r);
            for (const k of e.remove) this.storage.segments.remove(k);
            return;
        }
        return;
      case 'dropped':
        this.stats_.count('drop.core', 1, e.reason);
        return;
    }
  }

  private sendFrame(to: string, msg: WireMessage, transient: boolean): void {
    const bytes = encode(toWire(msg));
    this.stats_.count(`out.${msg.type}`);
    this.stats_.count('bytes.out', bytes.byteLength);
    if (transient && !this.transport.isOpen(to)) {
      this.stats_.count('relay.out');
      this.publishTo(to, { t: 'relay', frame: toBase64(bytes) });
    } else {
      this.transport.send(to, bytes);
    }
  }

  private publishTo(to: string, data: Record<string, unknown>): void {
    this.pool.publish(`${this.opts.cluster}/${to}`, { ...data, from: this.id, to });
  }

  private onFrame(from: string, bytes: Uint8Array): void {
    this.stats_.count('bytes.in', bytes.byteLength);
    const r = decodeAll<WireMessage>(bytes, validateWire, fromWire);
    for (const msg of r.msgs) {
      this.stats_.count(`in.${msg.type}`);
      this.step({ type: 'frame', from, msg });
    }
    for (const error of r.errors) {
      this.stats_.count(`drop.${error.code}`, 1, `${from}: ${error.message}`);
      if (this.stats_.strike(from) > 50) {
        // a peer that keeps sending garbage loses its link
        this.transport.close(from);
        this.step({ type: 'linkDown', peer: from });
        return;
      }
    }
  }

  private onSignaling(topic: string, data: Record<string, unknown>, clients: number, own: boolean): void {
    const err = validateSignal(data);
    if (err) return this.stats_.count('drop.signaling', 1, err);
    const from = data.from as string;
    if (topic === this.clusterTopic && data.t === 'announce') {
      if (own) {
        // our own announce came back: `clients` tells whether anybody else is here
        this.stats_.set('signaling.clients', clients);
        if (clients <= 1 && this.state === 'joining' && this.early === null) this.becomeReady('alone');
        return;
      }
      this.stats_.set('signaling.clients', clients);
      this.step({ type: 'announce', from, clients, isolated: data.isolated === true });
      return;
    }
    if (own || topic !== this.selfTopic || data.to !== this.id) return;
    if (data.t === 'signal') {
      markOnce('p2p:signal-in');
      this.transport.handleSignal(from, data.conn as string, data.signal);
    } else if (data.t === 'relay') {
      markOnce('p2p:relay-in');
      const bytes = fromBase64(data.frame as string);
      if (!bytes) return this.stats_.count('drop.relay', 1, 'bad base64');
      this.stats_.count('relay.in');
      this.onFrame(from, bytes);
    }
  }

  /** Links dialled to contacts that the overlay did not take up (neither neighbour nor asked). */
  private dropUnusedContacts(contacts: string[]): void {
    const used = new Set([...this.core.activeView(), ...this.core.query.overlay.pending()]);
    for (const c of contacts) if (!used.has(c)) this.transport.close(c);
  }

  private onSignalingOpen(): void {
    if (this.stopped) return;
    // A reload: dial a couple of the previous neighbours now, the overlay asks them (and
    // the rest) once started. One accepting neighbour makes the node ready; each dial
    // costs both tabs some main thread (about 15-20 ms for the RTCPeerConnection alone).
    const dial = this.toDial.splice(0);
    for (const c of dial.slice(0, PREDIAL)) this.transport.connect(c);
    // after a (re)connect with an empty active view, announce again (a reload with
    // contacts announces at start instead, if it still needs to)
    if (this.core.activeView().length === 0 && (dial.length === 0 || this.early === null)) {
      this.pool.publish(this.clusterTopic, { t: 'announce', from: this.id, isolated: true });
    }
  }

  private checkJoined(): void {
    if (this.core.activeView().length > 0 && this.state !== 'joined' && this.state !== 'left') {
      if (this.core.query.members.live().length > 1) this.becomeReady('joined');
    } else if (this.state === 'joined' && this.core.activeView().length === 0) {
      this.state = 'joining';
    }
  }

  private becomeReady(state: 'joined' | 'alone'): void {
    this.state = state;
    this.resolveReady();
    this.emit({ type: 'peers' });
  }

  private schedule(fn: () => void, delay: number, every?: number): void {
    this.timers.set(() => {
      if (this.stopped) return;
      fn();
      if (every) this.schedule(fn, every, every);
    }, delay);
  }

  private emit(e: NodeEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.error('listener', err);
      }
    }
  }

  private error(where: string, e: unknown): void {
    this.stats_.count('errors', 1, `${where}: ${(e as Error)?.message ?? String(e)}`);
    console.error(`p2p: ${where}`, e);
  }

  /**
   * One request to the core. `timeout` null: no safety timer (a waiting peek/take may wait
   * as long as the caller wants); the core's own timeouts still apply.
   */
  private call<T>(call: ApiCall, timeout: number | null = this.opts.apiTimeoutMs ?? 15_000, signal?: AbortSignal): Promise<T> {
    if (this.stopped) return Promise.reject(new Error('this node has left the cluster'));
    if (signal?.aborted) return Promise.reject(new Error(`${call.type} cancelled`));
    const req = ++this.reqSeq;
    return new Promise<T>((resolve, reject) => {
      const timer = timeout === null ? null : this.timers.set(() => {
        this.pending.delete(req);
        reject(new Error(`${call.type} timed out after ${timeout} ms`));
      }, timeout);
      const onAbort = () => this.step({ type: 'api', req: ++this.reqSeq, call: { type: 'seg.cancel', target: req } });
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => signal?.removeEventListener('abort', onAbort);
      this.pending.set(req, {
        resolve: (v) => (done(), resolve(v as T)),
        reject: (e) => (done(), reject(e)),
        timer,
      });
      this.step({ type: 'api', req, call });
    });
  }

  // --- P2PApi ---

  peers(): string[] {
    return this.core.activeView();
  }

  passive(): string[] {
    return this.core.query.overlay.passive();
  }

  members(): string[] {
    return this.core.query.members.live();
  }

  memberViews(): MemberView[] {
    return this.core.query.members.all().map((m) => ({
      id: m.id,
      nick: m.nick,
      status: m.status,
      incarnation: m.incarnation,
      active: m.active,
      rooms: Array.isArray(m.meta.rooms) ? (m.meta.rooms as string[]) : [],
    }));
  }

  info(): NodeInfo {
    return {
      id: this.id,
      nick: this.nick,
      cluster: this.opts.cluster,
      signaling: this.pool.states(),
      eager: this.core.query.overlay.eager(),
      lazy: this.core.query.overlay.lazy(),
      state: this.state,
      ice: this.opts.ice?.describe(),
    };
  }

  links(): LinkInfo[] {
    return visibleLinks(this.transport.linkInfos(), this.core.query.members.live(), Date.now());
  }

  stats(): Record<string, number> {
    const t = this.transport.stats;
    return {
      ...this.stats_.snapshot(),
      'links.open': this.transport.openPeers().length,
      'links.dials': t.dials,
      'links.dialFailures': t.dialFailures,
      'links.heartbeatTimeouts': t.heartbeatTimeouts,
      'frames.out': t.framesOut,
      'messages.out': t.messagesOut,
      'frames.in': t.framesIn,
      'links.unreachableDrops': t.unreachableDrops,
      ...linkCounters(this.links()),
      ...this.opts.ice?.counters(),
      'kv.localKeys': this.core.query.kv.localCount(),
      // how often the KVS's placement changed (each one re-checks every local key's owners)
      'kv.placementChanges': this.core.query.stats.kvCounters().placementChanges,
      'storage.pending': this.storage?.kv.stats.pending ?? 0,
      'storage.errors': this.storage?.kv.stats.errors ?? 0,
      'storage.compactions': this.storage?.kv.compactions ?? 0,
    };
  }

  /** Recent problems (dropped frames, errors) with their reasons, newest last. */
  problems(): string[] {
    return this.stats_.recent();
  }

  on(listener: (e: NodeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async leave(): Promise<void> {
    if (this.stopped) return;
    this.step({ type: 'leave' });
    this.transport.flush();
    this.stopped = true;
    this.state = 'left';
    await this.storage?.flush();
    // give the DISCONNECT / LEAVE frames a moment on the wire before closing
    await new Promise((r) => setTimeout(r, 100));
    this.shutdown();
    this.emit({ type: 'peers' });
  }

  /** pagehide: say goodbye synchronously (the page may be gone right after). */
  leaveNow(): void {
    if (this.stopped) return;
    this.step({ type: 'leave' });
    // frames are coalesced in a later task, which a closing page may never run
    this.transport.flush();
    this.stopped = true;
    this.state = 'left';
    void this.storage?.flush();
  }

  private shutdown(): void {
    this.timers.stop();
    this.opts.ice?.stop();
    this.transport.closeAll();
    this.pool.close();
    for (const [, p] of this.pending) {
      p.timer?.cancel();
      p.reject(new Error('this node has left the cluster'));
    }
    this.pending.clear();
  }

  readonly chat = {
    send: (text: string, room = 'lobby'): Promise<void> => this.call<void>({ type: 'chat.send', room, text }),
    tell: (nick: string, text: string): Promise<void> => this.call<void>({ type: 'chat.tell', nick, text }),
    history: (room = 'lobby'): ChatMessage[] => this.core.query.chat.history(room),
    join: async (room: string): Promise<void> => {
      await this.call<void>({ type: 'chat.join', room });
      await this.persistChatMeta();
    },
    leave: async (room: string): Promise<void> => {
      await this.call<void>({ type: 'chat.leave', room });
      await this.persistChatMeta();
    },
    rooms: (): string[] => this.core.query.chat.rooms(),
    joined: (): string[] => this.core.query.chat.joined(),
    members: (room = 'lobby'): string[] => this.core.query.chat.members(room),
    /** Throws a clear error for an invalid nickname; nothing changes then. */
    setNick: (nick: string): void => {
      const err = nickError(nick);
      if (err) throw new Error(err);
      void this.call<void>({ type: 'chat.nick', nick }).then(
        () => {
          this.nick = this.core.query.chat.nick();
          return this.persistChatMeta();
        },
        (e: unknown) => this.error('setNick', e),
      );
    },
  };

  private async persistChatMeta(): Promise<void> {
    if (!this.storage) return;
    try {
      await this.storage.setMeta('rooms', this.core.query.chat.joined());
      await this.storage.setMeta('nick', this.core.query.chat.nick());
    } catch (e) {
      this.error('storage meta', e);
    }
  }

  readonly kv = {
    put: (key: string, value: unknown): Promise<void> => this.call<void>({ type: 'kv.put', key, value }),
    get: (key: string): Promise<unknown> => this.call<unknown>({ type: 'kv.get', key }),
    delete: (key: string): Promise<void> => this.call<void>({ type: 'kv.delete', key }),
    keys: (prefix = ''): Promise<string[]> => this.call<string[]>({ type: 'kv.keys', prefix }),
    replicas: (key: string): string[] => this.core.query.kv.replicas(key),
    localKeys: (): string[] => this.core.query.kv.localKeys(),
    inspect: async (key: string) => {
      const r = await this.call<{ value: unknown; version: { ts: number; node: string } } | undefined>({ type: 'kv.inspect', key });
      return r === undefined ? undefined : { key, value: r.value, version: r.version, replicas: this.core.query.kv.replicas(key) };
    },
  };

  readonly segments: SegmentsApi = {
    put: (key: string, value: unknown): Promise<number> => this.call<number>({ type: 'seg.put', key, value }),
    update: (key: string, value: unknown): Promise<number> => this.call<number>({ type: 'seg.update', key, value }),
    peek: (key: string, afterId = 0, o: { signal?: AbortSignal; timeoutMs?: number } = {}) =>
      this.call<{ id: number; value: unknown }>({ type: 'seg.peek', key, afterId, timeoutMs: o.timeoutMs }, o.timeoutMs === undefined ? null : o.timeoutMs + 5_000, o.signal),
    take: (key: string, afterId = 0, o: { signal?: AbortSignal; timeoutMs?: number } = {}) =>
      this.call<{ id: number; value: unknown }>({ type: 'seg.take', key, afterId, timeoutMs: o.timeoutMs }, o.timeoutMs === undefined ? null : o.timeoutMs + 5_000, o.signal),
  };
}
