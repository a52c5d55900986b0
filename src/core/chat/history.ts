import type { ChatMessage } from './types';

/** Total order of messages: HLC timestamp, ties (impossible for honest nodes) by id. */
export function compareMessages(a: ChatMessage, b: ChatMessage): number {
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * The newest `limit` messages of one room, kept sorted. A message older than every kept
 * one is refused once the room is full, which also keeps an evicted message from coming
 * back when a neighbour sends it again: dedupe needs only the ids still held.
 */
export class RoomHistory {
  private readonly messages: ChatMessage[] = [];
  private readonly ids = new Set<string>();

  constructor(private readonly limit: number) {}

  /**
   * True when `m` was stored (new and recent enough); a message pushed out to make room
   * is appended to `evicted`.
   */
  add(m: ChatMessage, evicted?: ChatMessage[]): boolean {
    if (this.ids.has(m.id)) return false;
    const list = this.messages;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareMessages(list[mid]!, m) < 0) lo = mid + 1;
      else hi = mid;
    }
    if (list.length >= this.limit) {
      if (lo === 0) return false;
      const oldest = list.shift()!;
      this.ids.delete(oldest.id);
      evicted?.push(oldest);
      lo--;
    }
    list.splice(lo, 0, m);
    this.ids.add(m.id);
    return true;
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  get(id: string): ChatMessage | undefined {
    return this.ids.has(id) ? this.messages.find((m) => m.id === id) : undefined;
  }

  /** Newest timestamp held, or -1 when empty. */
  newest(): number {
    return this.messages.length === 0 ? -1 : this.messages[this.messages.length - 1]!.ts;
  }

  get size(): number {
    return this.messages.length;
  }

  /** A copy, oldest first. */
  list(): ChatMessage[] {
    return this.messages.slice();
  }
}
