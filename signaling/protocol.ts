/**
 * The y-webrtc signaling protocol (client → server frames) and its validation.
 * Pure: no sockets, no clock. The server feeds it the text of each frame and
 * acts on the result, so a hostile frame can only ever produce a `Rejected`.
 */
import type { Limits } from './limits';

export type ClientMessage =
  | { type: 'subscribe'; topics: string[] }
  | { type: 'unsubscribe'; topics: string[] }
  /** `body` is the whole parsed frame; it is relayed as is, plus `clients`. */
  | { type: 'publish'; topic: string; body: Record<string, unknown> }
  /** The connection's last will, published as `body` when it closes; `will`
   * null (a frame without `topic`) clears it. `body` is the whole frame with
   * `type` set to "publish", the only type receivers accept. */
  | { type: 'will'; will: { topic: string; body: Record<string, unknown> } | null }
  | { type: 'ping' };

/** Why a frame or a connection was refused. Each reason is also the key of its
 * counter in `stats().rejected` and the `reason` of the error reply, if any. */
export const REJECT_REASONS = [
  'not-json', // text frame that is not JSON
  'not-object', // JSON null, array, number, string, boolean
  'unknown-type', // object whose `type` is a string we do not know (ignored, like stock)
  'bad-field', // `type` not a string, `topics` not an array of strings, `topic` not a string
  'bad-topic', // empty or over-long topic name
  'too-deep', // publish or will nested deeper than maxJsonDepth
  'will-too-large', // will frame over maxWillBytes (the previous will is kept)
  'binary', // binary frame
  'oversized', // frame over maxFrameBytes (ws refuses it while reading the header)
  'protocol-error', // other WebSocket protocol violations (bad UTF-8, bad opcode, unmasked frame)
  'rate-limited', // frame dropped by the per-connection token bucket
  'byte-rate-limited', // frame dropped by the per-connection byte bucket
  'ip-byte-rate-limited', // frame dropped by the byte bucket of its client address
  'flood', // connection closed after sustained rate-limit drops
  'too-many-topics', // subscription over maxTopicsPerConnection
  'ip-topic-limit', // subscription over maxTopicsPerIp (summed over one address's connections)
  'server-topic-limit', // new topic while the server holds maxTopics
  'connection-limit', // upgrade refused: maxConnections reached
  'ip-connection-limit', // upgrade refused: maxConnectionsPerIp reached
  'origin-refused', // upgrade refused: Origin not in the allowed list
  'ping-timeout', // connection terminated: no pong to the previous ping
  'slow-consumer', // receiver terminated: more than maxBufferedBytes queued
  'internal-error', // a bug of ours surfaced while handling a frame; that connection closed (1011)
] as const;

export type RejectReason = (typeof REJECT_REASONS)[number];

export type ParseResult =
  | { ok: true; message: ClientMessage }
  | { ok: false; reason: RejectReason; detail: string };

type FrameLimits = Pick<Limits, 'maxTopicLength' | 'maxTopicsPerConnection' | 'maxJsonDepth' | 'maxWillBytes'>;
type TopicLimits = Pick<Limits, 'maxTopicLength' | 'maxTopicsPerConnection'>;

function reject(reason: RejectReason, detail: string): ParseResult {
  return { ok: false, reason, detail };
}

function checkTopicName(topic: string, limits: TopicLimits): string | null {
  if (topic.length === 0) return 'empty topic name';
  if (topic.length > limits.maxTopicLength) return `topic name longer than ${limits.maxTopicLength}`;
  return null;
}

function parseTopicList(body: Record<string, unknown>, limits: TopicLimits): string[] | ParseResult {
  const topics = body.topics;
  if (!Array.isArray(topics)) return reject('bad-field', '`topics` must be an array of strings');
  // A list longer than a connection may hold can never be honoured in full.
  if (topics.length > limits.maxTopicsPerConnection) {
    return reject('too-many-topics', `more than ${limits.maxTopicsPerConnection} topics in one message`);
  }
  for (const topic of topics) {
    if (typeof topic !== 'string') return reject('bad-field', '`topics` must be an array of strings');
    const problem = checkTopicName(topic, limits);
    if (problem) return reject('bad-topic', problem);
  }
  return topics as string[];
}

/** True when `value` nests objects/arrays more than `maxDepth` levels deep.
 * Stops descending at the limit, so its own recursion is bounded too. */
export function nestedDeeperThan(value: unknown, maxDepth: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (maxDepth <= 0) return true;
  for (const child of Array.isArray(value) ? value : Object.values(value)) {
    if (nestedDeeperThan(child, maxDepth - 1)) return true;
  }
  return false;
}

/** Validates one text frame. Never throws. */
export function parseClientFrame(text: string, limits: FrameLimits): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return reject('not-json', err instanceof Error ? err.message.slice(0, 120) : 'invalid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return reject('not-object', `expected a JSON object, got ${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value}`);
  }
  const body = value as Record<string, unknown>;
  const type = body.type;
  if (typeof type !== 'string') return reject('bad-field', '`type` must be a string');
  switch (type) {
    case 'subscribe':
    case 'unsubscribe': {
      const topics = parseTopicList(body, limits);
      if (!Array.isArray(topics)) return topics;
      return { ok: true, message: { type, topics } };
    }
    case 'publish': {
      const topic = body.topic;
      if (typeof topic !== 'string') return reject('bad-field', '`topic` must be a string');
      const problem = checkTopicName(topic, limits);
      if (problem) return reject('bad-topic', problem);
      // Only relayed bodies are re-serialised, so only they need the bound.
      if (nestedDeeperThan(body, limits.maxJsonDepth)) return reject('too-deep', `nested deeper than ${limits.maxJsonDepth}`);
      return { ok: true, message: { type, topic, body } };
    }
    case 'will': {
      if (body.topic === undefined) return { ok: true, message: { type, will: null } };
      const topic = body.topic;
      if (typeof topic !== 'string') return reject('bad-field', '`topic` must be a string');
      const problem = checkTopicName(topic, limits);
      if (problem) return reject('bad-topic', problem);
      // A will is held until its connection closes: one per connection, each this small.
      const bytes = Buffer.byteLength(text);
      if (bytes > limits.maxWillBytes) return reject('will-too-large', `${bytes}-byte will, over ${limits.maxWillBytes}`);
      if (nestedDeeperThan(body, limits.maxJsonDepth)) return reject('too-deep', `nested deeper than ${limits.maxJsonDepth}`);
      body.type = 'publish';
      return { ok: true, message: { type, will: { topic, body } } };
    }
    case 'ping':
      return { ok: true, message: { type } };
    default:
      return reject('unknown-type', `unknown type "${type.slice(0, 40)}"`);
  }
}
