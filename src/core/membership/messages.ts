import type { NodeId } from '../types';
import { arrayOf, int, isObject, nodeId, oneOf, optional, shape, str, union, type Check } from '../validate';
import { proofCheck, type BroadcastProof } from '../plumtree/messages';

/**
 * Membership messages. Two channels:
 * - `MemberUpdate`: the payload of Plumtree broadcasts of kind 'member' (ALIVE, SUSPECT,
 *   DEAD, LEFT), SWIM-style rumours about one member;
 * - `MemberMessage`: direct sends between two nodes (full-table sync to a new neighbour,
 *   and the ping/ack probe that tells a failed neighbour from a voluntary disconnect).
 */
/** Plumtree payload kind of membership broadcasts. */
export const MEMBER_KIND = 'member';

export type MemberStatus = 'alive' | 'suspect' | 'dead' | 'left';

export interface MemberInfo {
  id: NodeId;
  /**
   * Only the member itself raises it (SWIM). Its base is the member's start time in ms,
   * so a reloaded tab with the same id starts above any incarnation it used before.
   */
  incarnation: number;
  status: MemberStatus;
  nick: string;
  /** Its HyParView active view (for the UI graph). */
  active: NodeId[];
  /** Opaque application data (e.g. chat rooms), bounded by maxMetaBytes. */
  meta: Record<string, unknown>;
  /** Local time of the last change of this entry. */
  updatedAt: number;
}

export type MemberUpdate =
  /** `every`: the sender's heartbeat period (ms) from now on; receivers expire it after a few of them. */
  | { type: 'alive'; id: NodeId; incarnation: number; nick: string; active: NodeId[]; meta: Record<string, unknown>; every?: number }
  | { type: 'suspect'; id: NodeId; incarnation: number; by: NodeId }
  | { type: 'dead'; id: NodeId; incarnation: number; by: NodeId }
  | { type: 'left'; id: NodeId; incarnation: number };

/**
 * One row of a full-table sync: the sender's view of a member (`status` at `incarnation`;
 * `age`: ms since the sender last heard from it, or since the state began for dead and
 * left members) and, as `proof`, the member's own latest ALIVE or LEFT as it broadcast it.
 * Only the proof speaks for the member (its nick, active view, meta, a LEFT); the status
 * and age are the sender's hearsay, as SUSPECT and DEAD are.
 */
export interface MemberRecord {
  id: NodeId;
  incarnation: number;
  status: MemberStatus;
  age: number;
  proof?: BroadcastProof;
}

export type MemberMessage =
  | { type: 'mem.sync'; records: MemberRecord[] }
  | { type: 'mem.ping'; nonce: number }
  | { type: 'mem.ack'; nonce: number };

export type MemberTimer =
  /** Periodic ALIVE (jittered aliveIntervalMs). */
  | { type: 'mem.alive' }
  /** Debounced ALIVE after a local change or a first neighbour. */
  | { type: 'mem.announce' }
  /** Expire silent members, drop old tombstones. */
  | { type: 'mem.sweep' }
  /** A neighbour went down and did not answer our ping in time. */
  | { type: 'mem.probe'; peer: NodeId; nonce: number }
  /** A suspicion not refuted in time becomes DEAD. */
  | { type: 'mem.suspect'; id: NodeId; incarnation: number }
  /** A member that left is taken out of placement() now, unless it came back (MembershipConfig.leaveGraceMs). */
  | { type: 'mem.leftGrace'; id: NodeId; incarnation: number };

export const MAX_NICK_LENGTH = 64;
export const MAX_ACTIVE = 64;
export const MAX_META_BYTES = 4096;
export const MAX_SYNC_RECORDS = 512;
const MAX_META_DEPTH = 8;

/**
 * Rough encoded size of a value (msgpack-like), Infinity past `budget` or too deep:
 * bounds untrusted meta without encoding it. Never throws.
 */
export function approxSize(v: unknown, budget = MAX_META_BYTES, depth = 0): number {
  if (depth > MAX_META_DEPTH) return Infinity;
  if (v === null || v === undefined || typeof v === 'boolean') return 1;
  if (typeof v === 'number') return 9;
  if (typeof v === 'string') return v.length * 3 + 5; // UTF-8 worst case per UTF-16 unit
  if (v instanceof Uint8Array) return v.byteLength + 5;
  let total = 5;
  if (Array.isArray(v)) {
    for (const x of v) {
      total += approxSize(x, budget - total, depth + 1);
      if (total > budget) return Infinity;
    }
    return total;
  }
  if (typeof v === 'object') {
    for (const k of Object.keys(v)) {
      total += k.length * 3 + 5 + approxSize((v as Record<string, unknown>)[k], budget - total, depth + 1);
      if (total > budget) return Infinity;
    }
    return total;
  }
  return Infinity; // functions, symbols, bigint: not data
}

export const metaCheck =
  (maxBytes = MAX_META_BYTES): Check =>
  (v) =>
    !isObject(v) ? 'meta: not an object' : approxSize(v, maxBytes) > maxBytes ? `meta larger than ${maxBytes} bytes` : null;

/** Longest heartbeat period a member may announce (a week): bounds how long a silent member stays listed. */
export const MAX_ALIVE_PERIOD_MS = 7 * 24 * 3600 * 1000;
const incarnation = int(0, Number.MAX_SAFE_INTEGER);
const nick = str(MAX_NICK_LENGTH);
const active = arrayOf(nodeId, MAX_ACTIVE);
const status = oneOf('alive', 'suspect', 'dead', 'left');

const updateCheck = union({
  alive: { id: nodeId, incarnation, nick, active, meta: metaCheck(), every: optional(int(1_000, MAX_ALIVE_PERIOD_MS)) },
  suspect: { id: nodeId, incarnation, by: nodeId },
  dead: { id: nodeId, incarnation, by: nodeId },
  left: { id: nodeId, incarnation },
});

const record = shape({ id: nodeId, incarnation, status, age: int(0, Number.MAX_SAFE_INTEGER), proof: optional(proofCheck) });

const messageCheck = union({
  'mem.sync': { records: arrayOf(record, MAX_SYNC_RECORDS) },
  'mem.ping': { nonce: int(0, 2 ** 32) },
  'mem.ack': { nonce: int(0, 2 ** 32) },
});

/** A broadcast payload of kind 'member' (untrusted: it came through other nodes). */
export function validateMemberUpdate(v: unknown): string | null {
  return updateCheck(v);
}

/** A direct membership message from a peer. */
export function validateMemberMessage(v: unknown): string | null {
  return messageCheck(v);
}

/** A message of this protocol (by its `mem.` prefix): lets the composer route without casts. */
export function isMemberMessage(m: { type: string }): m is MemberMessage {
  return m.type.startsWith('mem.');
}
