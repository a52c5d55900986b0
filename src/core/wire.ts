/**
 * Compact wire forms of the messages that dominate traffic: Plumtree GOSSIP (every
 * broadcast copy) and IHAVE (every lazy link per broadcast), with a chat message payload
 * folded into its gossip.
 *
 * Messages are objects with named fields everywhere in the core; only the bytes between
 * two tabs use these forms. `toWire` is applied just before encoding and `fromWire` right
 * after decoding, before validation, so a malformed compact form simply fails validation
 * like any other bad frame. Neither function throws.
 *
 * - GOSSIP `{type:'pt.gossip', id, origin, round, kind, data, seal?}` → `['g', id, round, kind,
 *   data]`, or `['g', id, round, kind, data, seal]` when sealed: the origin is the first part
 *   of the id (`originOf`), which validation already required.
 * - chat payload `{type:'chat.message', message:{id, room, from, nick, text, ts}}` of a
 *   gossip whose origin is the author → `[room, nick, text, ts]`: from = origin, and the id
 *   is `chatMessageId(from, ts)` (how Chat names its messages). Any other payload is sent
 *   as it is. A sealed copy carries its payload in the seal's signed body instead, which
 *   is this same compact form (compactSigned).
 * - IHAVE `{type:'pt.ihave', entries:[[id, round], …]}` → `['i', prefix, counter, round,
 *   counter, round, prefix, …]`: ids are `${origin}:${tag}:${counter}` with the counter in
 *   base 36, so entries are grouped under their prefix (`${origin}:${tag}:`, a string
 *   ending in ':') and the counter travels as a number. A counter that is not the canonical
 *   base-36 form of a safe integer travels as its string (which never ends in ':').
 *
 * For a chat message of a few characters this takes a GOSSIP copy from about 217 to about
 * 70 bytes; an IHAVE entry costs 3 or 4 bytes after its prefix instead of about 24.
 */
import { CHAT_KIND, chatMessageId } from './chat/types';
import { originOf } from './plumtree/messages';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function toWire(msg: { type: string }): unknown {
  const m = msg as Obj;
  if (m.type === 'pt.gossip') {
    const origin = originOf(m.id as string);
    // an anti-entropy copy keeps its object form: the `ae` mark must travel
    if (origin === '' || origin !== m.origin || m.ae !== undefined) return msg;
    const data = m.kind === CHAT_KIND ? compactChat(m.data, origin) : m.data;
    // a sealed copy carries its payload inside the seal (runtime/seals.ts): the seal travels as a sixth element
    return m.seal === undefined ? ['g', m.id, m.round, m.kind, data] : ['g', m.id, m.round, m.kind, data, m.seal];
  }
  if (m.type === 'pt.ihave' && Array.isArray(m.entries)) {
    const out: unknown[] = ['i'];
    let prefix = '';
    for (const [id, round] of m.entries as [string, number][]) {
      const cut = id.lastIndexOf(':') + 1;
      if (cut <= 0 || cut === id.length) return msg;
      const p = id.slice(0, cut);
      if (p !== prefix) out.push((prefix = p));
      const c = id.slice(cut);
      const n = parseInt(c, 36);
      out.push(Number.isSafeInteger(n) && n.toString(36) === c ? n : c, round);
    }
    return out;
  }
  return msg;
}

/**
 * The form of a broadcast payload that its author signs (runtime/seals.ts): a chat
 * message as its compact form, what the author's id and the timestamp already say left
 * out (186 → 28 bytes for a short message; the signed body travels in every copy). The
 * transcript binds the origin, so `expandSigned` rebuilds the same message a receiver
 * would have been sent in full. Other payloads are signed as they are.
 */
export function compactSigned(kind: string, data: unknown, origin: string): unknown {
  return kind === CHAT_KIND ? compactChat(data, origin) : data;
}

/** The payload a signed body stands for: the inverse of compactSigned (a full-form body, as older tabs signed, is returned as it is). */
export function expandSigned(kind: string, data: unknown, origin: string): unknown {
  return kind === CHAT_KIND ? expandChat(data, origin) : data;
}

function compactChat(data: unknown, origin: string): unknown {
  if (!isObj(data) || data.type !== 'chat.message' || !isObj(data.message)) return data;
  const c = data.message;
  if (c.from !== origin || c.to !== undefined || typeof c.ts !== 'number' || c.id !== chatMessageId(origin, c.ts)) return data;
  // only the known fields travel, as cleanMessage would keep
  return [c.room, c.nick, c.text, c.ts];
}

export function fromWire(v: unknown): unknown {
  if (!Array.isArray(v)) return v;
  if (v[0] === 'g' && (v.length === 5 || v.length === 6)) {
    const [, id, round, kind, data, seal] = v;
    const origin = typeof id === 'string' ? originOf(id) : '';
    if (origin === '') return v;
    const g: Obj = { type: 'pt.gossip', id, origin, round, kind, data: kind === CHAT_KIND ? expandChat(data, origin) : data };
    if (v.length === 6) g.seal = seal;
    return g;
  }
  if (v[0] === 'i') {
    const entries: unknown[] = [];
    let prefix: string | null = null;
    for (let i = 1; i < v.length; ) {
      const x = v[i];
      if (typeof x === 'string' && x.endsWith(':')) {
        prefix = x;
        i++;
        continue;
      }
      if (prefix === null || i + 1 >= v.length) return v;
      const counter = typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? x.toString(36) : typeof x === 'string' ? x : null;
      if (counter === null) return v;
      entries.push([prefix + counter, v[i + 1]]);
      i += 2;
    }
    return { type: 'pt.ihave', entries };
  }
  return v;
}

function expandChat(data: unknown, origin: string): unknown {
  if (!Array.isArray(data) || data.length !== 4) return data;
  const [room, nick, text, ts] = data;
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0) return data;
  return { type: 'chat.message', message: { id: chatMessageId(origin, ts), room, from: origin, nick, text, ts } };
}
