/** Chat rooms, the current room's messages, unread counts, and the command input. */
import { hlcToDate } from '../lib/format';
import type { ChatMessage, NodeId, P2PApi } from '../../runtime/api';
import { parseInput as parseChatInput } from '../../core/chat/commands';
import { errorMessage } from '../lib/format';
import { pageVisible, same, subscribe } from './poll';

export const DEFAULT_ROOM = 'lobby';

/** A line shown only in this tab (command feedback, help). */
export interface Notice {
  id: string;
  /** Local wall ms. */
  at: number;
  text: string;
}

export type ChatLine =
  | { kind: 'message'; id: string; at: number; message: ChatMessage; mine: boolean; direct: boolean }
  | { kind: 'notice'; id: string; at: number; text: string };

/**
 * The open room's log is re-rendered at most once per REFRESH_MS (see scheduleRefresh): the
 * first message after a quiet spell is shown at once, a busy room's at most this late.
 */
export const REFRESH_MS = 250;

export class ChatState {
  current = $state(DEFAULT_ROOM);
  /** Rooms this node has joined. */
  joined = $state.raw<string[]>([]);
  /** Every room with a live member. */
  rooms = $state.raw<string[]>([]);
  /** Member ids of the current room. */
  roomMembers = $state.raw<NodeId[]>([]);
  unread = $state<Record<string, number>>({});
  /** The last error (bad command, rejected send, chatError event); shown in an alert. */
  error = $state<string | null>(null);
  /** Commands in flight (sends may overlap). */
  pending = $state(0);
  readonly busy = $derived(this.pending > 0);

  private history = $state.raw<ChatMessage[]>([]);
  /** /tell messages to or from this node: shown in whichever room is open. */
  private direct = $state.raw<ChatMessage[]>([]);
  private notices = $state.raw<Notice[]>([]);
  private noticeSeq = 0;
  private readonly node: P2PApi;

  /**
   * One ChatLine per message object, kept across recomputations: the log's rows keep their
   * identity, so a new message renders one row instead of re-rendering all of them.
   */
  private readonly lineOf = new WeakMap<ChatMessage, ChatLine>();
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  /** Date.now() of the last re-render of the open room's messages. */
  private refreshedAt = -Infinity;

  readonly lines = $derived.by((): ChatLine[] => {
    const me = this.node.id;
    const toLine = (m: ChatMessage): ChatLine => {
      let line = this.lineOf.get(m);
      if (!line) {
        line = { kind: 'message', id: `m:${m.id}`, at: hlcToDate(m.ts).getTime(), message: m, mine: m.from === me, direct: m.to !== undefined };
        this.lineOf.set(m, line);
      }
      return line;
    };
    const lines: ChatLine[] = [
      ...this.history.map(toLine),
      ...this.direct.map(toLine),
      ...this.notices.map((n): ChatLine => ({ kind: 'notice', id: `n:${n.id}`, at: n.at, text: n.text })),
    ];
    return lines.sort((a, b) => a.at - b.at);
  });
  /** Joined rooms first, then the others that have live members. */
  readonly roomList = $derived.by(() => {
    const joined = new Set(this.joined);
    const others = this.rooms.filter((r) => !joined.has(r));
    return [...[...joined].sort(), ...others.sort()].map((name) => ({ name, joined: joined.has(name), unread: this.unread[name] ?? 0 }));
  });
  readonly inCurrent = $derived(this.joined.includes(this.current));

  constructor(node: P2PApi) {
    this.node = node;
    this.refreshRooms();
    if (!this.joined.includes(this.current) && this.joined.length) this.current = this.joined[0]!;
    this.refreshRoom();
  }

  connect(): () => void {
    const off = subscribe(
      this.node,
      (e) => {
        switch (e.type) {
          case 'chat':
            this.onMessage(e.message);
            break;
          case 'chatError':
            this.error = `#${e.room}: ${e.error}`;
            break;
          case 'rooms':
          case 'members':
            this.refreshRooms();
            this.refreshMembers();
            break;
        }
      },
      () => {
        this.refreshRooms();
        this.refreshRoom();
      },
    );
    return () => {
      off();
      if (this.refreshTimer !== undefined) clearTimeout(this.refreshTimer);
      this.refreshTimer = undefined;
    };
  }

  select(room: string): void {
    this.current = room;
    this.unread[room] = 0;
    this.refreshRoom();
  }

  dismissError(): void {
    this.error = null;
  }

  /** Runs one line of input; resolves true when it was accepted (so the input can be cleared). */
  async submit(input: string): Promise<boolean> {
    const cmd = parseChatInput(input);
    if (cmd.type === 'error') {
      this.error = cmd.error;
      return false;
    }
    this.pending++;
    try {
      switch (cmd.type) {
        case 'say':
          if (!this.inCurrent) throw new Error(`You are not in #${this.current}. Type /join ${this.current} to join it.`);
          await this.node.chat.send(cmd.text, this.current);
          break;
        case 'nick':
          this.node.chat.setNick(cmd.nick);
          this.notice(`You are now known as ${cmd.nick}.`);
          break;
        case 'join':
          await this.node.chat.join(cmd.room);
          this.refreshRooms();
          this.select(cmd.room);
          this.notice(`You joined #${cmd.room}.`);
          break;
        case 'leave': {
          const room = cmd.room ?? this.current;
          await this.node.chat.leave(room);
          this.refreshRooms();
          this.notice(`You left #${room}.`);
          if (room === this.current) this.select(this.joined[0] ?? DEFAULT_ROOM);
          break;
        }
        case 'tell':
          await this.node.chat.tell(cmd.nick, cmd.text);
          break;
        case 'help':
          this.notice(cmd.text);
          break;
      }
      this.error = null;
      return true;
    } catch (e) {
      this.error = errorMessage(e);
      return false;
    } finally {
      this.pending--;
    }
  }

  private onMessage(m: ChatMessage): void {
    if (m.to !== undefined) {
      if (!this.direct.some((d) => d.id === m.id)) this.direct = [...this.direct, m];
      return;
    }
    if (m.room === this.current) this.scheduleRefresh();
    else if (m.from !== this.node.id && this.joined.includes(m.room)) this.unread[m.room] = (this.unread[m.room] ?? 0) + 1;
  }

  /**
   * Messages arriving in a burst are shown together, at most once per REFRESH_MS; the first
   * after a quiet spell at once (in a task of its own, so the messages of one network task
   * are one render). Each render costs the tab about the same whatever it adds (the log's
   * style, layout and paint, measured in docs/benchmarks.md "A tab's main thread during chat"), so
   * in a busy room the rate of renders, not of messages, is the tab's cost. A hidden tab
   * renders nothing: the poll re-reads the room the moment the page is shown again.
   */
  private scheduleRefresh(): void {
    if (this.refreshTimer !== undefined) return;
    const wait = Math.max(0, this.refreshedAt + REFRESH_MS - Date.now());
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      if (pageVisible()) this.refreshRoom();
    }, wait);
  }

  private notice(text: string): void {
    this.notices = [...this.notices, { id: String(++this.noticeSeq), at: Date.now(), text }];
  }

  private refreshRoom(): void {
    this.refreshedAt = Date.now();
    try {
      const history = this.node.chat.history(this.current);
      const last = (h: ChatMessage[]) => h[h.length - 1]?.id;
      if (history.length !== this.history.length || last(history) !== last(this.history) || history[0]?.room !== this.history[0]?.room) {
        this.history = history;
      }
    } catch (e) {
      this.error = `Could not read #${this.current}: ${errorMessage(e)}`;
    }
    this.refreshMembers();
  }

  private refreshRooms(): void {
    try {
      const joined = this.node.chat.joined();
      if (!same(joined, this.joined)) this.joined = joined;
      const rooms = this.node.chat.rooms();
      if (!same(rooms, this.rooms)) this.rooms = rooms;
    } catch (e) {
      this.error = `Could not list rooms: ${errorMessage(e)}`;
    }
  }

  private refreshMembers(): void {
    try {
      const members = this.node.chat.members(this.current);
      if (!same(members, this.roomMembers)) this.roomMembers = members;
    } catch (e) {
      this.error = `Could not list members of #${this.current}: ${errorMessage(e)}`;
    }
  }
}
