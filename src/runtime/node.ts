/**
 * The browser node (`window.p2p`): the P2PApi over the parts that run the pure CoreNode
 * in a tab. This file wires them and routes the core's effects; each part holds one job
 * (see README.md here):
 *   CoreDriver       core-driver.ts       steps the core, early inputs, flush, timers
 *   SignalingBridge  signaling-bridge.ts  announces, signals and relayed frames
 *   PeerLinks        peer-links.ts        WebRTC links and the frames on them
 *   Persistence      persistence.ts       IndexedDB: load, persist effects, orphans
 *   RequestTracker   requests.ts          API calls as core requests and their replies
 *   JoinState        join.ts              joining / joined / alone / left, contacts
 *   Sealer           seals.ts             signs our broadcasts, routed envelopes, KV entries and queue items, verifies others'
 * The views, chat, KV and segments of the API are core-api.ts's, shared with the UI's mock.
 */
import type { CoreQueries, Entry, NodeIn, WireMessage } from '../core/node';
import type { KvCounters } from '../core/kv/types';
import { LinkOrder, Sealer, stripSealed } from './seals';
import { RouteBundles, type RouteOut } from './route-bundles';
import { SigningBatch } from './signing-batch';
import { SEALED_ITEM_OVERHEAD, sealedSegments } from './seg-seals';
import { DEFAULT_SEGMENTS_CONFIG } from '../core/segments';
import type { LinkInfo } from '../net/transport';
import type { ChatApi, KvApi, MemberView, NodeEvent, NodeInfo, P2PApi, SegmentsApi } from './api';
import { coreApi, type CoreApi } from './core-api';
import { CoreDriver, type DriverEffect } from './core-driver';
import { SignalingBridge } from './signaling-bridge';
import { PeerLinks } from './peer-links';
import { Persistence } from './persistence';
import { DROP, DurableAcks } from './durable-acks';
import { RequestTracker } from './requests';
import { JoinState } from './join';
import { Stats } from './stats';
import { markOnce } from './marks';
import { linkCounters, visibleLinks } from './links';
import type { NodeOptions } from './node-options';

export type { NodeOptions } from './node-options';

/** Give the DISCONNECT / LEAVE frames this long on the wire before closing the links. */
const LEAVE_LINGER_MS = 100;
/** Longest a signed KV entry waits for the other signatures of its burst (sealEntry). */
const SEAL_BATCH_MS = 2;


export class P2PNode implements P2PApi {
  readonly id: string;
  readonly ready: Promise<void>;
  /** The core's read-only views (for the UI, benches and diagnostics; not part of P2PApi). */
  readonly query: CoreQueries;
  private readonly stats_ = new Stats();
  private readonly listeners = new Set<(e: NodeEvent) => void>();
  private readonly driver: CoreDriver;
  private readonly persistence: Persistence;
  /** KV acknowledgements and write replies wait until what they acknowledge is on disk. */
  private readonly acks: DurableAcks;
  private readonly signaling: SignalingBridge;
  private readonly links_: PeerLinks;
  private readonly requests: RequestTracker;
  private readonly join: JoinState;
  private readonly api: CoreApi;
  private nick: string;
  /** Signs our broadcasts and routed envelopes, verifies everyone else's (seals.ts). */
  private readonly sealer: Sealer;
  /**
   * Per link, the frames waiting for a signature check or a signature, in order: a frame
   * reaches the core (or the link) only after every earlier one of that link did.
   */
  private readonly inOrder = new LinkOrder<WireMessage | WireMessage[] | null>((e) => this.stats_.error('signatures', e));
  private readonly outOrder = new LinkOrder<WireMessage | null>((e) => this.stats_.error('signatures', e));
  private readonly routeBundles = new RouteBundles(
    (src, dst, ttl, parts) => this.sealer.sealRouteParts(src, dst, ttl, parts),
    (to, sealed, transient) => this.pushOut(to, sealed, transient),
  );
  /** Our broadcasts being sealed, answered to the core in the order it asked. */
  private sealChain: Promise<void> = Promise.resolve();
  /** Entries of our KV writes being sealed, handed to the core in the order it asked (sealEntry). */
  private readonly entrySeals = new SigningBatch(SEAL_BATCH_MS);
  readonly chat: ChatApi;
  readonly kv: KvApi;
  readonly segments: SegmentsApi;

  constructor(private readonly opts: NodeOptions) {
    this.id = opts.identity.id;
    this.nick = opts.nick;
    this.sealer = new Sealer(opts.identity, opts.cluster, Date.now, (key) => this.query.kv.localEntry(key));
    // queue items are signed by their writer (seg-seals.ts): the core's value limit makes room for the seal
    const seg = { ...DEFAULT_SEGMENTS_CONFIG, ...opts.config?.segments };
    const segments = { ...opts.config?.segments, maxValueBytes: seg.maxValueBytes + SEALED_ITEM_OVERHEAD };
    this.driver = new CoreDriver(this.id, { ...opts.config, sealBroadcasts: true, kv: { ...opts.config?.kv, sealWrites: true }, segments }, this.stats_, (e) => this.run(e));
    this.query = this.driver.query;
    const step = (input: NodeIn) => this.driver.step(input);
    this.persistence = new Persistence(
      { id: this.id, enabled: opts.persist !== false, preloaded: opts.preloaded, restart: opts.restart },
      this.stats_,
      this.query.kv,
    );
    this.acks = new DurableAcks(this.persistence.kvStore);
    this.signaling = new SignalingBridge(
      { identity: opts.identity, cluster: opts.cluster, urls: opts.signaling, WebSocketImpl: opts.WebSocketImpl, sockets: opts.sockets, secret: opts.secret },
      this.stats_,
      {
        announce: (from, clients, isolated) => step({ type: 'announce', from, clients, isolated }),
        ownAnnounce: (clients) => this.join.onOwnAnnounce(clients),
        signal: (from, conn, signal) => this.links_.handleSignal(from, conn, signal),
        relay: (from, bytes) => this.links_.receive(from, bytes),
        will: (from) => {
          step({ type: 'will', from });
          this.links_.check(from);
        },
        state: () => this.emit({ type: 'signaling' }),
        open: () => this.join.onSignalingOpen(),
      },
    );
    this.links_ = new PeerLinks(
      {
        identity: opts.identity,
        cluster: opts.cluster,
        // with a secret, hellos carry HMAC(K_link, transcript): no secret, no link
        linkMacKey: opts.secret?.keys.link,
        isMember: (peer) => this.query.members.live().includes(peer),
        SimplePeer: opts.SimplePeer,
        ice: opts.ice,
      }, this.stats_, {
      message: (from, msg) => this.receive(from, msg),
      linkUp: () => this.emit({ type: 'peers' }),
      linkDown: (peer) => step({ type: 'linkDown', peer }),
      signal: (to, conn, signal) => this.signaling.signal(to, conn, signal),
      relay: (to, bytes) => this.signaling.relay(to, bytes),
    });
    this.requests = new RequestTracker(this.driver, opts.apiTimeoutMs ?? 15_000);
    this.join = new JoinState(
      this.id,
      opts.contacts,
      {
        query: this.query,
        driver: this.driver,
        signalingOpen: () => this.signaling.isOpen(),
        announce: () => this.signaling.announce(true),
        dial: (peer) => this.links_.connect(peer),
        close: (peer) => this.links_.close(peer),
        changed: () => this.emit({ type: 'peers' }),
      },
      opts.aloneAfterMs,
    );
    this.ready = this.join.ready;
    this.api = coreApi({
      query: this.query,
      call: (call, timeout, signal) => this.requests.call(call, timeout, signal),
      roomsChanged: () => this.saveChatMeta(),
      nickChanged: () => {
        this.nick = this.query.chat.nick();
        return this.saveChatMeta();
      },
      error: (where, e) => this.stats_.error(where, e),
      on: (listener) => this.on(listener),
    });
    this.chat = this.api.chat;
    this.kv = this.api.kv;
    this.segments = sealedSegments(this.api.segments, this.sealer.segItems, seg);
  }

  /** Loads persisted state, then joins. */
  async start(): Promise<void> {
    const loadStart = performance.now();
    const restored = await this.persistence.load();
    if (restored.nick && this.nick === '') this.nick = restored.nick;
    markOnce('p2p:loaded');
    if (this.nick === '') this.nick = `guest-${this.id.slice(1, 5)}`;
    this.stats_.set('kv.restored', restored.kvEntries.length);
    this.stats_.set('start.loadMs', Math.round(performance.now() - loadStart));
    const { kvEntries, chatHistory, segRecords, rooms } = restored;
    const contacts = this.join.contacts;
    this.driver.start({ type: 'start', nick: this.nick, rooms, kvEntries, chatHistory, segRecords, contacts }, () => this.join.started());
    // a restart takeover merged other nodes' rooms and nick in: keep them for the next start
    if (this.opts.restart) void this.saveChatMeta();
    void this.persistence.afterStart((fn, delay, every) => this.driver.schedule(fn, delay, every), {
      adopt: (entries, chat) => this.driver.step({ type: 'adopt', entries, chat }),
      hasMessage: (m) => this.query.chat.history(m.room).some((x) => x.id === m.id),
    });
  }

  /** Runs one core effect (timers stay in the driver). */
  private run(e: DriverEffect): void {
    switch (e.type) {
      case 'send':
        if (DurableAcks.isAck(e.msg.type)) return this.acks.after(() => this.send(e.to, e.msg, e.transient === true), DROP);
        return this.send(e.to, e.msg, e.transient === true);
      case 'seal':
        return this.seal(e.id, e.kind, e.data);
      case 'sealEntry':
        return this.sealEntry(e.op, e.entry);
      case 'disconnect':
        this.links_.close(e.peer);
        this.emit({ type: 'peers' });
        return;
      case 'announce':
        markOnce('p2p:announce');
        this.signaling.announce(e.isolated);
        this.stats_.count('announce.out');
        return;
      case 'reply': {
        const write = e.ok ? this.requests.kvWrite(e.req) : null;
        if (write === null) return this.requests.settle(e);
        const failed = `${write}: not acknowledged, this tab could not store it on disk (IndexedDB write failed; see stats 'storage.failing')`;
        return this.acks.after(
          () => this.requests.settle(e),
          () => this.requests.settle({ type: 'reply', req: e.req, ok: false, error: failed }),
        );
      }
      case 'event':
        if (e.event.type === 'peers' || e.event.type === 'members') this.join.check();
        this.emit(e.event);
        return;
      case 'persist':
        return this.persistence.apply(e);
      case 'dropped':
        this.stats_.count('drop.core', 1, e.reason);
        return;
    }
  }

  /** A frame from a neighbour: to the core once its signatures are checked (seals.ts), in link order. */
  private receive(from: string, msg: WireMessage): void {
    const sealer = this.sealer;
    const check = sealer.needsCheck(msg, from);
    if (!check && !this.inOrder.busy(from)) return this.driver.step({ type: 'frame', from, msg });
    // checks run at once, side by side; deliveries wait their turn
    const checked = check ? sealer.inbound(msg, from) : Promise.resolve(msg);
    this.inOrder.push(from, checked, (m) => {
      if (this.driver.stopped) return;
      if (Array.isArray(m)) for (const one of m) this.driver.step({ type: 'frame', from, msg: one });
      else if (m) this.driver.step({ type: 'frame', from, msg: m });
      else this.stats_.count('drop.unverified', 1, `${from}: ${msg.type} without a valid signature`);
    });
  }

  /**
   * A message of ours to a neighbour, in link order: our routed envelopes signed first,
   * those to one destination in bundles while a signature is under way (route-bundles.ts).
   */
  private send(to: string, msg: WireMessage, transient: boolean): void {
    const sealer = this.sealer;
    if (sealer.needsSigning(msg)) return this.routeBundles.add(to, msg as unknown as RouteOut, transient);
    if (!this.outOrder.busy(to)) return this.links_.send(to, stripSealed(msg), transient);
    this.pushOut(to, Promise.resolve(stripSealed(msg)), transient);
  }

  private pushOut(to: string, sealed: Promise<WireMessage>, transient: boolean): void {
    this.outOrder.push(to, sealed, (m) => {
      if (m) this.links_.send(to, m, transient);
    });
  }

  /** The core's `seal` effect: sign our broadcast, hand it back as `sealed` (in the order asked). */
  private seal(id: string, kind: string, data: unknown): void {
    const sealer = this.sealer;
    const sealed = sealer.sealBroadcast(id, kind, data);
    this.sealChain = this.sealChain
      .then(() => sealed)
      .then((seal) => this.driver.step({ type: 'sealed', id, kind, data, seal }))
      .catch((e: unknown) => this.stats_.error('seal', e));
  }

  /**
   * The core's `sealEntry` effect: sign the entry of a KV write we coordinate and hand the
   * seal back (`entrySealed`), in the order asked. The seals that are ready go to the core
   * together, in one turn, so a burst of writes still leaves as one batched replica write
   * per replica (`kv.puts`) rather than one message each: at once when no other signature
   * is pending (a lone put waits for nothing), else after SEAL_BATCH_MS. A failed signature
   * leaves the write to its request timeout.
   */
  private sealEntry(op: number, entry: Entry): void {
    this.entrySeals.add(
      () => this.sealer.sealEntry(entry),
      (r) => {
        if (!r.ok) return this.stats_.error('sealEntry', r.error);
        if (!this.driver.stopped) this.driver.step({ type: 'entrySealed', op, seal: r.value });
      },
    );
  }

  private emit(e: NodeEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.stats_.error('listener', err);
      }
    }
  }

  // --- P2PApi ---

  peers(): string[] {
    return this.api.peers();
  }

  passive(): string[] {
    return this.api.passive();
  }

  members(): string[] {
    return this.api.members();
  }

  memberViews(): MemberView[] {
    return this.api.memberViews();
  }

  info(): NodeInfo {
    return {
      id: this.id,
      nick: this.nick,
      cluster: this.opts.cluster,
      signaling: this.signaling.states(),
      eager: this.query.overlay.eager(),
      lazy: this.query.overlay.lazy(),
      state: this.join.state,
      ice: this.opts.ice?.describe(),
      secret: this.signaling.secretStatus(),
    };
  }

  links(): LinkInfo[] {
    return visibleLinks(this.links_.linkInfos(), this.query.members.live(), Date.now());
  }

  stats(): Record<string, number> {
    return {
      ...this.stats_.snapshot(),
      ...this.links_.counters(),
      ...linkCounters(this.links()),
      ...this.opts.ice?.counters(),
      'kv.localKeys': this.query.kv.localCount(),
      // how often the KVS's placement changed (each one re-checks every local key's owners)
      'kv.placementChanges': this.query.stats.kvCounters().placementChanges,
      ...readCounters(this.query.stats.kvCounters()),
      ...this.persistence.counters(),
      'kv.acksHeld': this.acks.counters.held,
      'kv.acksDropped': this.acks.counters.dropped,
      'kv.writesFailedStorage': this.acks.counters.failedReplies,
      ...sealerCounters(this.sealer),
      ...limitCounters(this.query),
      ...memberCounters(this.query),
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
    if (!this.goodbye()) return;
    await this.persistence.flush();
    await new Promise((r) => setTimeout(r, LEAVE_LINGER_MS));
    this.driver.shutdown();
    this.opts.ice?.stop();
    this.links_.closeAll();
    this.signaling.close();
    this.requests.rejectAll();
    this.emit({ type: 'peers' });
  }

  /** pagehide: say goodbye synchronously (the page may be gone right after). */
  leaveNow(): void {
    if (this.goodbye()) void this.persistence.flush();
  }

  /** Sends LEAVE and stops the node; false when it had stopped already. */
  private goodbye(): boolean {
    if (this.driver.stopped) return false;
    this.driver.step({ type: 'leave' });
    this.signaling.withdrawWill();
    this.persistence.stopWatching();
    // frames are coalesced in a later task, which a closing page may never run
    this.links_.flush();
    this.driver.stop();
    this.join.left();
    return true;
  }

  private saveChatMeta(): Promise<void> {
    return this.persistence.saveChatMeta(this.query.chat.joined(), this.query.chat.nick());
  }
}

function sealerCounters(s: Sealer): Record<string, number> {
  const c = s.counters;
  return {
    'sig.sealed': c.sealed,
    'sig.routesSealed': c.routesSealed,
    'sig.routesBundled': c.routesBundled,
    'sig.verified': c.verified,
    'sig.refused': c.refused,
    'sig.proofsStripped': c.proofsStripped,
    'sig.signUs': c.signUs,
    'sig.verifyUs': c.verifyUs,
    'sig.entriesSealed': c.entriesSealed,
    'sig.entriesVerified': c.entriesVerified,
    'sig.entriesCached': c.entriesCached,
    'sig.entriesHeld': c.entriesHeld,
    'sig.entriesRefused': c.entriesRefused,
    'sig.entryMessagesDropped': c.entryMessagesDropped,
    'sig.itemsSealed': s.segItems.counters.sealed,
    'sig.itemsVerified': s.segItems.counters.verified,
    'sig.itemsCached': s.segItems.counters.cached,
    'sig.itemsRefused': s.segItems.counters.refused,
    'sig.itemMessagesDropped': s.segItems.counters.messagesDropped,
  };
}

/** How members came and went in this tab's view (core/membership/README.md). */
function memberCounters(q: CoreQueries): Record<string, number> {
  const m = q.stats.membership();
  return {
    'mem.live': m.live,
    'mem.suspicionsRaised': m.suspicionsRaised,
    'mem.suspectedAfterWill': m.suspectedAfterWill,
    'mem.refutations': m.refutations,
    'mem.expired': m.expired,
    'mem.cutOff': m.cutOff,
    'mem.syncForwarded': m.syncForwarded,
    'mem.broadcasts': m.broadcasts,
  };
}

/** What the bounds of docs/security.md refused, as `p2p.stats()` names it. */
function limitCounters(q: CoreQueries): Record<string, number> {
  const node = q.stats.limits();
  const pt = q.stats.plumtree();
  const chat = q.stats.chat();
  const kv = q.stats.kvCounters();
  return {
    'limit.link': node.linkRateLimited,
    'limit.route': node.routeRateLimited,
    'limit.origin': pt.rateLimited,
    'limit.gossipRefused': pt.refused,
    'limit.chat': chat.rateLimited,
    'limit.evictions': q.stats.hyparview().evictionsRateLimited,
    'limit.chatFuture': chat.futureRefused,
    'limit.kvFuture': kv.futureRefused,
    'limit.kvKeyCap': kv.keyCapRefused,
    'limit.kvTooLarge': kv.tooLargeRefused,
    'limit.kvGcDrop': kv.gcDropRefused,
    'limit.memberFuture': q.stats.membership().futureRefused,
    'limit.segBallotAhead': q.stats.segments().ballotsAheadRefused,
    'limit.segKeyCap': q.stats.segments().keyCapRefused,
  };
}

/** How this tab's reads went: repairs, retries, reads past the preference list, entries fetched after a newer head. */
function readCounters(c: KvCounters): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of ['readRepairs', 'readRetries', 'speculativeReads', 'headFetches', 'readsWithoutQuorum', 'readsWaitedForBusy'] as const) out[`kv.${k}`] = c[k];
  return out;
}
