import { HlcClock, hlcTooFarAhead, hlcWall } from '../clock/hlc';
import { Protocol, type ClusterView } from '../protocol';
import type { NodeId, Rng } from '../types';
import { nodeId as nodeIdCheck } from '../validate';
import { originOf, proofCheck } from '../plumtree/messages';
import { RoomHistory } from './history';
import { TokenBuckets } from '../limits/rate';
import {
  CHAT_LIMITS,
  DEFAULT_CHAT_CONFIG,
  DIRECT_ROOM,
  chatMessageId,
  type ChatBroadcast,
  type ChatConfig,
  type ChatEvent,
  type ChatIn,
  type ChatMessage,
  type ChatProof,
  type ChatStats,
  type ChatWire,
} from './types';
import {
  cleanMessage,
  messageError,
  nickError,
  normalizeRoom,
  roomError,
  textError,
  validateChatBroadcast,
  validateChatMessage,
} from './validate';

/**
 * A remote timestamp further ahead of our wall clock than this is still accepted (every
 * node must keep the same history) but not merged into our HLC: the HLC never goes back,
 * so one tab with a clock far ahead would otherwise drag the timestamps of every later
 * message, from every node that heard it, into the future with it.
 */
export const MAX_CLOCK_DRIFT_MS = 60_000;
/** A neighbour gets at most one history answer per this interval (a request is tiny, the answer is not). */
export const HISTORY_REQUEST_INTERVAL_MS = 1_000;
/** Rough byte budget of one history frame, well under wire/'s 256 KiB frame limit. */
export const HISTORY_BATCH_BYTES = 64 * 1024;

/**
 * The key of a stored message in the runtime's chat store: room, timestamp and id joined
 * by NUL (the key stores written by earlier versions use, so they still load). Persist
 * effects name the messages to delete by this key.
 */
export function storageKey(m: ChatMessage): string {
  return `${m.room}\u0000${m.ts}\u0000${m.id}`;
}

/**
 * Chat rooms over Plumtree (README.md beside this file). Room messages are broadcast to
 * every node and every node keeps a bounded history of every room it hears about, so any
 * neighbour can bring a late joiner up to date; /tell messages go to one member directly.
 *
 * Protocol contract (core/protocol.ts): inputs `start`, `load`, `deliver` (a Plumtree
 * broadcast of kind 'chat'), `message`, `neighborUp`, `neighborDown`, `members` (uses
 * `view.live`) and the client requests `send`, `tell`, `join`, `leave`, `setNick`;
 * effects `send`, `reply`, `persist` (ChatMessage records, keys from `storageKey`) and
 * events `broadcast` (send `data` through Plumtree with kind 'chat'), `delivered` and
 * `meta` (put rooms and nick into the membership meta).
 *
 * The HLC (`clock`) is chat's own: message timestamps and ids come from it.
 *
 * Authorship (docs/security.md): a room message counts only when its `from` is the
 * broadcast's origin (which the runtime proved by the author's signature), and it is shown
 * with the nick its author has as a member; every kept room message keeps the broadcast it
 * came in as `proof`, history answers carry it, and a history entry without its author's
 * broadcast is refused. A /tell must come from its author (the routed source, signed too).
 */
export class Chat extends Protocol<ChatIn, ChatWire, never, ChatEvent, ChatMessage> {
  /** The effective configuration (limits clamped to CHAT_LIMITS). */
  readonly config: Readonly<ChatConfig>;
  private myNick: string;
  private readonly joinedRooms = new Set<string>();
  /** Every room we keep history for, plus DIRECT_ROOM for /tell messages. */
  private readonly histories = new Map<string, RoomHistory>();
  /** Other live members, from the membership meta (we are authoritative about ourselves). */
  private view = new Map<NodeId, { nick: string; rooms: Set<string> }>();
  private readonly lastServed = new Map<string, number>();
  /** Distinguishes this run of the node from earlier ones with the same id (reloads). */
  private session = 0;
  /** Storage changes of the current handle() call, emitted as one `persist` at its end. */
  private added: ChatMessage[] = [];
  private evicted: ChatMessage[] = [];
  /** Per-author message rate (ChatConfig.originRate). */
  private readonly authorBuckets: TokenBuckets;
  private readonly counters: ChatStats = {
    invalid: 0,
    rateLimited: 0,
    duplicate: 0,
    refused: 0,
    futureRefused: 0,
    historyRequests: 0,
    historyRateLimited: 0,
    historyBatchesSent: 0,
    tellsRejected: 0,
    forged: 0,
    nickCorrected: 0,
  };

  /**
   * `_rng` is unused (chat draws no random numbers); it is there so that every protocol
   * is built the same way. `clock`: the HLC for message timestamps (a test may pass one
   * to look at).
   */
  constructor(
    private readonly me: NodeId,
    config: Partial<ChatConfig>,
    _rng: Rng,
    private readonly clock: HlcClock = new HlcClock(),
  ) {
    super();
    const c = { ...DEFAULT_CHAT_CONFIG, ...config };
    const atLeast1 = (n: number) => Math.max(1, Math.floor(n));
    this.config = Object.freeze({
      maxTextLength: Math.min(atLeast1(c.maxTextLength), CHAT_LIMITS.maxTextLength),
      historyPerRoom: atLeast1(c.historyPerRoom),
      maxRooms: atLeast1(c.maxRooms),
      maxKnownRooms: Math.max(atLeast1(c.maxKnownRooms), atLeast1(c.maxRooms)),
      maxRoomNameLength: Math.min(atLeast1(c.maxRoomNameLength), CHAT_LIMITS.maxRoomNameLength),
      maxNickLength: Math.min(atLeast1(c.maxNickLength), CHAT_LIMITS.maxNickLength),
      defaultRoom: normalizeRoom(c.defaultRoom),
      originRate: c.originRate,
    });
    this.authorBuckets = new TokenBuckets(this.config.originRate);
    this.myNick = this.defaultNick();
  }

  protected onInput(input: ChatIn): void {
    this.dispatch(input);
    this.flushPersist();
  }

  private dispatch(input: ChatIn): void {
    switch (input.type) {
      case 'start':
        this.session = Math.max(0, Math.floor(this.now));
        return this.onStart(input.nick, input.rooms);
      case 'load':
        return this.onLoad(input.records);
      case 'deliver':
        return this.onDeliver(input.from, input.data, input.proof);
      case 'message':
        return this.onMessage(input.from, input.msg);
      case 'neighborUp':
        // Ask for everything the neighbour keeps: a late joiner does not know yet which
        // rooms exist, and keeping every room's history is what lets it serve others.
        this.io.send(input.peer, { type: 'chat.historyReq', session: this.session });
        return;
      case 'neighborDown':
        return this.onNeighborDown(input.peer);
      case 'members':
        return this.onMembers(input.view);
      case 'send':
        return this.onSend(input.req, input.room, input.text);
      case 'tell':
        return this.onTell(input.req, input.nick, input.text);
      case 'join':
        return this.reply(input.req, this.onJoin(input.room));
      case 'leave':
        return this.reply(input.req, this.onLeave(input.room));
      case 'setNick':
        return this.reply(input.req, this.onSetNick(input.nick));
    }
  }

  // ---- read-only views ----

  /** Messages of a room (or DIRECT_ROOM), oldest first: HLC timestamp, ties by id. */
  history(room: string): ChatMessage[] {
    const key = room === DIRECT_ROOM ? room : normalizeRoom(room);
    return this.histories.get(key)?.list() ?? [];
  }

  /** Rooms with at least one live member, ours included. A room with no member is gone. */
  rooms(): string[] {
    const all = new Set(this.joinedRooms);
    for (const m of this.view.values()) for (const r of m.rooms) all.add(r);
    return [...all].sort();
  }

  joined(): string[] {
    return [...this.joinedRooms].sort();
  }

  /** Live members of a room, this node included when it has joined. */
  members(room: string): NodeId[] {
    const r = normalizeRoom(room);
    const ids: NodeId[] = [];
    if (this.joinedRooms.has(r)) ids.push(this.me);
    for (const [id, m] of this.view) if (m.rooms.has(r)) ids.push(id);
    return ids.sort();
  }

  nick(): string {
    return this.myNick;
  }

  stats(): ChatStats {
    return { ...this.counters };
  }

  // ---- inputs ----

  private onStart(nick: string, rooms: string[] | undefined): void {
    const n = typeof nick === 'string' ? nick.trim() : '';
    this.myNick = nickError(n, this.config.maxNickLength) === null ? n : this.defaultNick();
    this.joinedRooms.clear();
    for (const raw of rooms ?? []) {
      if (this.joinedRooms.size >= this.config.maxRooms) break;
      const r = typeof raw === 'string' ? normalizeRoom(raw) : '';
      if (roomError(r, this.config.maxRoomNameLength) === null) this.joinedRooms.add(r);
    }
    // The default room is joined at start unless restored rooms say where we were.
    if (this.joinedRooms.size === 0) this.joinedRooms.add(this.config.defaultRoom);
    for (const r of this.joinedRooms) this.roomHistory(r);
    this.emitMeta();
  }

  /**
   * History restored from IndexedDB: kept without `delivered` (the caller re-reads
   * history()); stored messages beyond the bounds come back as `evicted` so storage shrinks.
   */
  private onLoad(messages: unknown): void {
    if (!Array.isArray(messages)) {
      this.counters.invalid++;
      return;
    }
    for (const raw of messages) {
      const direct = typeof raw === 'object' && raw !== null && (raw as ChatMessage).room === DIRECT_ROOM;
      if (messageError(raw, direct) !== null) {
        this.counters.invalid++;
        continue;
      }
      const m = cleanMessage(raw as ChatMessage);
      if (direct && m.from !== this.me && m.to !== this.me) {
        this.counters.invalid++;
        continue;
      }
      const proof = (raw as ChatMessage).proof;
      if (!direct && proof !== undefined && originOf(proof.id) === m.from) m.proof = proof;
      this.accept(m, true);
    }
  }

  private onDeliver(origin: NodeId, data: unknown, proof: ChatProof | undefined): void {
    if (validateChatBroadcast(data) !== null) {
      this.counters.invalid++;
      return;
    }
    const m = cleanMessage((data as ChatBroadcast).message);
    if (m.from !== origin) {
      this.counters.forged++;
      return;
    }
    if (proof) m.proof = proof.seal ? { id: proof.id, seal: proof.seal } : { id: proof.id };
    // our own message comes back once sealed: the stored copy gets its proof
    const held = this.histories.get(m.room)?.get(m.id);
    if (held && !held.proof && m.proof && held.from === m.from && held.ts === m.ts) {
      held.proof = m.proof;
      this.added.push(held);
      return;
    }
    // ours passed the rate when sent
    if (origin !== this.me && !this.authorBuckets.take(origin, this.now)) {
      this.counters.rateLimited++;
      return;
    }
    const member = this.view.get(origin);
    if (member && member.nick !== '' && member.nick !== m.nick) {
      m.nick = member.nick;
      this.counters.nickCorrected++;
    }
    this.accept(m, false);
  }

  private onMessage(from: NodeId, msg: ChatWire): void {
    if (validateChatMessage(msg) !== null || nodeIdCheck(from) !== null) {
      this.counters.invalid++;
      return;
    }
    switch (msg.type) {
      case 'chat.historyReq':
        return this.serveHistory(from, msg.session ?? 0, msg.rooms);
      case 'chat.history':
        for (const m of msg.messages) {
          // only what its author broadcast: a neighbour cannot make up messages for others
          if (!m.proof || proofCheck(m.proof) !== null || originOf(m.proof.id) !== m.from) {
            this.counters.forged++;
            continue;
          }
          const c = cleanMessage(m);
          c.proof = m.proof.seal ? { id: m.proof.id, seal: m.proof.seal } : { id: m.proof.id };
          this.accept(c, false);
        }
        return;
      case 'chat.tell': {
        const m = cleanMessage(msg.message);
        // Only the author may send its /tell, and only to us: a relay cannot forge one.
        if (m.to !== this.me || m.from !== from) {
          this.counters.tellsRejected++;
          return;
        }
        if (!this.authorBuckets.take(from, this.now)) {
          this.counters.rateLimited++;
          return;
        }
        return this.accept(m, false);
      }
    }
  }

  /**
   * Nothing in chat depends on a neighbour staying one; what it keeps per peer is the
   * history rate limit, whose entries of `peer` are dropped here once they have expired
   * (a live entry stays, so a link that flaps does not lift the limit).
   */
  private onNeighborDown(peer: NodeId): void {
    const prefix = `${peer}/`;
    for (const [key, t] of this.lastServed) {
      if (key.startsWith(prefix) && this.now - t >= HISTORY_REQUEST_INTERVAL_MS) this.lastServed.delete(key);
    }
  }

  private onMembers(clusterView: ClusterView): void {
    const view = new Map<NodeId, { nick: string; rooms: Set<string> }>();
    const members = clusterView?.live;
    if (!Array.isArray(members)) return;
    for (const m of members) {
      if (typeof m !== 'object' || m === null || nodeIdCheck(m.id) !== null || m.id === this.me) continue;
      const rooms = new Set<string>();
      if (Array.isArray(m.rooms)) {
        for (const r of m.rooms.slice(0, CHAT_LIMITS.maxRoomList)) if (roomError(r) === null) rooms.add(r);
      }
      view.set(m.id, { nick: typeof m.nick === 'string' ? m.nick : '', rooms });
    }
    this.view = view;
  }

  private onSend(req: number, rawRoom: string, text: string): void {
    const room = typeof rawRoom === 'string' ? normalizeRoom(rawRoom) : '';
    const err =
      roomError(room, this.config.maxRoomNameLength) ??
      (this.joinedRooms.has(room) ? null : `you are not in room "${room}": /join ${room} first`) ??
      textError(text, this.config.maxTextLength) ??
      this.rateError();
    if (err !== null) return this.reply(req, err);
    const m = this.newMessage(room, text);
    // never `ok` for a message nobody will see: the room's bounded history keeps the newest
    // messages, so one older than all it holds (our clock far behind) is not kept
    if (!this.store(m, false)) return this.reply(req, `not sent: room "${room}" holds ${this.config.historyPerRoom} newer messages (is this computer's clock behind?)`);
    this.io.event({ type: 'broadcast', data: { type: 'chat.message', message: m } });
    this.reply(req, null);
  }

  private onTell(req: number, rawNick: string, text: string): void {
    const nick = typeof rawNick === 'string' ? rawNick.trim() : '';
    const err = nickError(nick, CHAT_LIMITS.maxNickLength) ?? textError(text, this.config.maxTextLength);
    if (err !== null) return this.reply(req, err);
    const target = this.resolveNick(nick);
    if (typeof target !== 'object') return this.reply(req, target);
    const rate = this.rateError();
    if (rate !== null) return this.reply(req, rate);
    const m: ChatMessage = { ...this.newMessage(DIRECT_ROOM, text), to: target.id };
    this.store(m, false);
    this.io.send(target.id, { type: 'chat.tell', message: m });
    this.reply(req, null);
  }

  /** Our own send past ChatConfig.originRate: the error the caller sees (others would drop it). */
  private rateError(): string | null {
    if (this.authorBuckets.take(this.me, this.now)) return null;
    this.counters.rateLimited++;
    const { burst, perSec } = this.config.originRate;
    return `not sent: sending too fast (at most ${burst} messages at once, then ${perSec} a second)`;
  }

  private onJoin(rawRoom: string): string | null {
    const room = typeof rawRoom === 'string' ? normalizeRoom(rawRoom) : '';
    const err = roomError(room, this.config.maxRoomNameLength);
    if (err !== null) return err;
    if (this.joinedRooms.has(room)) return null;
    if (this.joinedRooms.size >= this.config.maxRooms) {
      return `you are already in ${this.config.maxRooms} rooms: /leave one first`;
    }
    this.joinedRooms.add(room);
    this.roomHistory(room);
    this.emitMeta();
    return null;
  }

  private onLeave(rawRoom: string): string | null {
    const room = typeof rawRoom === 'string' ? normalizeRoom(rawRoom) : '';
    if (!this.joinedRooms.has(room)) return `you are not in room "${room.slice(0, 40)}"`;
    // The history stays: it is still served to neighbours (and evictable now).
    this.joinedRooms.delete(room);
    this.emitMeta();
    return null;
  }

  private onSetNick(rawNick: string): string | null {
    const nick = typeof rawNick === 'string' ? rawNick.trim() : '';
    const err = nickError(nick, this.config.maxNickLength);
    if (err !== null) return err;
    if (nick !== this.myNick) {
      this.myNick = nick;
      this.emitMeta();
    }
    return null;
  }

  // ---- helpers ----

  private newMessage(room: string, text: string): ChatMessage {
    const ts = this.clock.tick(this.now);
    return { id: chatMessageId(this.me, ts), room, from: this.me, nick: this.myNick, text, ts };
  }

  /**
   * A received (or restored) message: check it against our own limits, dedupe, store,
   * merge its timestamp into the HLC.
   */
  private accept(m: ChatMessage, restoring: boolean): void {
    const limitErr =
      textError(m.text, this.config.maxTextLength) ??
      (m.room === DIRECT_ROOM ? null : roomError(m.room, this.config.maxRoomNameLength));
    if (limitErr !== null) {
      this.counters.invalid++;
      return;
    }
    // A far-future message would sort after every real one and, in numbers, push them all
    // out of the bounded history: refused (restored ones too, so storage drops it).
    if (hlcTooFarAhead(m.ts, this.now)) {
      this.counters.futureRefused++;
      if (restoring) this.evicted.push(m);
      return;
    }
    if (!this.store(m, restoring)) return;
    if (hlcWall(m.ts) <= this.now + MAX_CLOCK_DRIFT_MS) this.clock.receive(m.ts, this.now);
  }

  /**
   * Adds to the room's history. A new message is announced (`delivered`, when its room is
   * joined or it is a /tell) and queued for storage, unless it came from storage.
   */
  private store(m: ChatMessage, restoring: boolean): boolean {
    const h = this.roomHistory(m.room);
    if (h?.has(m.id)) {
      this.counters.duplicate++;
      return false;
    }
    if (h === null || !h.add(m, this.evicted)) {
      this.counters.refused++;
      // Restored but outside the bounds: the caller may delete its stored copy.
      if (restoring) this.evicted.push(m);
      return false;
    }
    if (restoring) return true;
    this.added.push(m);
    if (m.room === DIRECT_ROOM || this.joinedRooms.has(m.room)) this.io.event({ type: 'delivered', message: m });
    return true;
  }

  /**
   * The history of `room`, created when new. At maxKnownRooms, the room we have not joined
   * whose newest message is oldest is dropped (its messages count as evicted); null when
   * every kept room is joined.
   */
  private roomHistory(room: string): RoomHistory | null {
    const existing = this.histories.get(room);
    if (existing) return existing;
    if (room !== DIRECT_ROOM && this.knownRoomCount() >= this.config.maxKnownRooms) {
      let victim: string | null = null;
      let victimNewest = Infinity;
      for (const [r, h] of this.histories) {
        if (r === DIRECT_ROOM || this.joinedRooms.has(r)) continue;
        if (h.newest() < victimNewest) {
          victim = r;
          victimNewest = h.newest();
        }
      }
      if (victim === null) return null;
      this.evicted.push(...this.histories.get(victim)!.list());
      this.histories.delete(victim);
    }
    const h = new RoomHistory(this.config.historyPerRoom);
    this.histories.set(room, h);
    return h;
  }

  private knownRoomCount(): number {
    return this.histories.size - (this.histories.has(DIRECT_ROOM) ? 1 : 0);
  }

  /** One `persist` per handle() call; a message both added and evicted in it never reached storage. */
  private flushPersist(): void {
    if (this.added.length === 0 && this.evicted.length === 0) return;
    const evicted = new Set(this.evicted);
    const added = new Set(this.added);
    const put = this.added.filter((m) => !evicted.has(m));
    const gone = this.evicted.filter((m) => !added.has(m));
    this.added = [];
    this.evicted = [];
    if (put.length > 0 || gone.length > 0) this.io.persist(put, gone.map(storageKey));
  }

  /**
   * Rate-limited per requesting session, not per node id: a reloaded tab keeps its id
   * but is a new session that has lost what it was sent a moment ago.
   */
  private serveHistory(peer: NodeId, session: number, rooms: string[] | undefined): void {
    const now = this.now;
    this.counters.historyRequests++;
    const key = `${peer}/${session}`;
    const last = this.lastServed.get(key);
    if (last !== undefined && now - last < HISTORY_REQUEST_INTERVAL_MS && now >= last) {
      this.counters.historyRateLimited++;
      return;
    }
    if (this.lastServed.size >= 1024) {
      for (const [p, t] of this.lastServed) if (now - t >= HISTORY_REQUEST_INTERVAL_MS) this.lastServed.delete(p);
    }
    this.lastServed.set(key, now);

    const wanted = new Set(rooms ?? this.histories.keys());
    let batch: ChatMessage[] = [];
    let bytes = 0;
    const flush = () => {
      if (batch.length === 0) return;
      this.io.send(peer, { type: 'chat.history', messages: batch });
      this.counters.historyBatchesSent++;
      batch = [];
      bytes = 0;
    };
    for (const room of wanted) {
      if (room === DIRECT_ROOM) continue; // /tell messages are private
      for (const m of this.histories.get(room)?.list() ?? []) {
        // without its broadcast a neighbour would refuse it (ours before its seal came back)
        if (!m.proof) continue;
        // Worst case 3 bytes per UTF-16 unit, plus msgpack keys and numbers, plus the proof
        // (its id, and a seal of about 3 times the message's size: bytes, signature, key).
        const size = 6 * (m.id.length + m.room.length + m.from.length + m.nick.length + m.text.length) + 3 * m.proof.id.length + 256;
        if (batch.length >= CHAT_LIMITS.maxHistoryBatch || (batch.length > 0 && bytes + size > HISTORY_BATCH_BYTES)) flush();
        batch.push(m);
        bytes += size;
      }
    }
    flush();
  }

  /** The one member using `nick` (exact match first, then case-insensitive), or why not. */
  private resolveNick(nick: string): { id: NodeId } | string {
    const everyone: { id: NodeId; nick: string }[] = [{ id: this.me, nick: this.myNick }];
    for (const [id, m] of this.view) everyone.push({ id, nick: m.nick });
    let found = everyone.filter((m) => m.nick === nick);
    if (found.length === 0) found = everyone.filter((m) => m.nick.toLowerCase() === nick.toLowerCase());
    if (found.length === 0) return `no member is named "${nick}"`;
    if (found.length > 1) {
      return `nickname "${nick}" is ambiguous: ${found.length} members use it`;
    }
    if (found[0]!.id === this.me) return `"${nick}" is you: /tell another member`;
    return { id: found[0]!.id };
  }

  private emitMeta(): void {
    this.io.event({ type: 'meta', rooms: this.joined(), nick: this.myNick });
  }

  /** Success, or the refusal with its reason (every refusal of a request says why). */
  private reply(req: number | undefined, error: string | null): void {
    if (req === undefined) return;
    if (error === null) this.io.reply(req);
    else this.io.fail(req, error);
  }

  private defaultNick(): string {
    const tail = this.me.replace(/[^\p{L}\p{N}]/gu, '').slice(0, 6);
    return tail.length > 0 ? `anon-${tail}` : 'anon';
  }
}
