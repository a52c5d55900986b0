/**
 * How `stats()` counter names are read. Names are classified loosely (tokens split on . : / _ -): a direction token
 * (in/rx/recv/received vs out/tx/sent/send), "bytes", "drop(s)"; what is left is the message type,
 * e.g. `in.pt.gossip`, `out.hpv.join`, `bytes.out`, `drop.malformed` (the real node's names), or
 * `msg.in.GOSSIP`, `sent.IHAVE`. Transport-level `frames.*` would double-count messages, so they
 * stay with the other counters.
 */
export type Kind = 'msg' | 'bytes' | 'drop' | 'other';
export type Dir = 'in' | 'out' | null;
export interface Classified {
  kind: Kind;
  dir: Dir;
  type: string;
}

const IN = new Set(['in', 'rx', 'recv', 'received', 'inbound', 'incoming']);
const OUT = new Set(['out', 'tx', 'sent', 'send', 'outbound', 'outgoing']);
const MSG = new Set(['msg', 'msgs', 'message', 'messages']);

export function classify(key: string): Classified {
  const parts = key.split(/[.:/_\s-]+/).filter(Boolean);
  if (/^frames?$/i.test(parts[0] ?? '')) return { kind: 'other', dir: null, type: key };
  let dir: Dir = null;
  let kind: Kind = 'other';
  const rest: string[] = [];
  for (const p of parts) {
    const l = p.toLowerCase();
    if (IN.has(l)) dir = 'in';
    else if (OUT.has(l)) dir = 'out';
    else if (l.startsWith('byte')) kind = 'bytes';
    else if (l.startsWith('drop')) kind = 'drop';
    else if (MSG.has(l)) kind = kind === 'other' ? 'msg' : kind;
    else rest.push(p);
  }
  if (kind === 'other' && dir !== null) kind = 'msg';
  return { kind, dir, type: rest.join('.') || (kind === 'msg' ? 'all' : '') };
}

