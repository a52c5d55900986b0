/**
 * Every message a peer may send a CoreNode, as one union, and the validator that admits
 * a decoded frame into it. Each protocol validates its own messages; this file picks the
 * validator by the `<proto>.` prefix of the type and checks the router's envelope.
 */
import { validateHpvMessage, type HpvMessage } from './hyparview';
import { validatePlumtreeMessage, type PtMessage } from './plumtree';
import { validateMemberMessage, type MemberMessage } from './membership';
import { validateKvMessage, type KvMessage } from './kv';
import { validateSegMessage, type SegMessage } from './segments';
import { validateChatMessage, type ChatWire } from './chat';
import { routeFields, type RouteEnvelope } from './routing/router';
import { shape } from './validate';

/**
 * Messages that may travel routed (inside `rt.route`) to any member. HyParView and
 * Plumtree messages only ever cross one link between neighbours.
 */
export type RoutedMessage = MemberMessage | KvMessage | ChatWire | SegMessage;

export type WireMessage = HpvMessage | PtMessage | RoutedMessage | RouteEnvelope<RoutedMessage>;

const validateRoute = shape(routeFields);

/** The protocol a message type belongs to: its lowercase prefix (`kv` of `kv.putAck`). */
function protocolOf(type: string): string {
  const m = /^[a-z]+/.exec(type);
  return m ? m[0] : '';
}

/** Validates any message a peer may send (`nested`: inside a route envelope); null when acceptable. */
export function validateWire(v: unknown, nested = false): string | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not an object';
  const t = (v as { type?: unknown }).type;
  if (typeof t !== 'string') return 'missing type';
  if (t === 'rt.route') {
    if (nested) return 'nested route';
    const env = v as { msg?: unknown; seal?: unknown };
    // sealed (runtime, between source and destination): the message is the seal's bytes
    if (env.msg === undefined) return validateRoute(v) ?? (env.seal === undefined ? 'route without a message' : null);
    return validateRoute(v) ?? validateWire(env.msg, true);
  }
  switch (protocolOf(t)) {
    case 'hpv': return nested ? 'hpv message cannot be routed' : validateHpvMessage(v);
    case 'pt': return nested ? 'pt message cannot be routed' : validatePlumtreeMessage(v);
    case 'mem': return validateMemberMessage(v);
    case 'kv': return validateKvMessage(v);
    case 'chat': return validateChatMessage(v);
    case 'seg': return validateSegMessage(v);
    default: return `unknown message type ${JSON.stringify(t).slice(0, 40)}`;
  }
}
