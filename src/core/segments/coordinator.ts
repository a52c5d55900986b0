/**
 * The coordinator: the node where an API call was made. It checks the call, sends it to
 * the owner in its view (`seg.req`, an `op` unique per incarnation), re-sends it until
 * answered (a confirmed waiting call every `keepaliveMs`), re-targets it when the owner
 * changes, and settles it with exactly one reply. A cancelled or timed-out take whose
 * item was removed anyway gets a `restore` that puts the item back.
 */
import { checkValue, errorText, keyProblem } from '../data-protocol';
import type { NodeId } from '../types';
import { cloneValue } from './copy';
import type { SegMessage } from './messages';
import type { Call, ReqMsg, SegState } from './state';

/**
 * What is wrong with `value` as the value of segment `key` (null when it is fine), in the
 * words of the API's errors. Exported for a runtime that wraps values before they reach
 * the core (signed queue items) and must check what the caller gave.
 */
export function segmentValueError(key: string, value: unknown, sizeOf: (value: unknown) => number, max: number): string | null {
  const v = checkValue(value, sizeOf, max);
  if (v.ok) return null;
  if (v.problem === 'undefined') return `value for segment '${key}' is undefined (use null)`;
  if (v.problem === 'unstorable') return `value for segment '${key}' cannot be stored: ${v.reason}`;
  return `value of ${v.bytes} bytes for segment '${key}' exceeds the ${max}-byte limit`;
}

export class Coordinator {
  constructor(private readonly s: SegState) {}

  private keyError(key: unknown): string | null {
    const p = keyProblem(key, this.s.config.maxKeyLength);
    // a key's pages are stored under key + U+0000 (messages.ts, storageKey)
    if (!p) return (key as string).includes('\0') ? 'segment key must not contain U+0000' : null;
    return p.tooLong ? `segment key longer than ${this.s.config.maxKeyLength} characters` : 'segment key must be a non-empty string';
  }

  private valueError(key: string, value: unknown): string | null {
    return segmentValueError(key, value, this.s.config.sizeOf, this.s.config.maxValueBytes);
  }

  write(kind: 'put' | 'update', req: number, key: string, value: unknown): void {
    const s = this.s;
    if (s.reqs.has(req)) {
      s.counters.add('duplicateReq');
      return;
    }
    const bad = this.keyError(key) ?? this.valueError(key, value);
    if (bad) return s.io.fail(req, bad);
    let copy: unknown;
    try {
      copy = cloneValue(value);
    } catch (e) {
      return s.io.fail(req, `value for segment '${key}' cannot be copied: ${errorText(e)}`);
    }
    const call: Call = { req, op: s.opIds.next(), kind, key, value: copy, afterId: 0, target: null, sentAt: -Infinity, registered: false, deadline: Infinity };
    this.add(call);
    s.io.setTimer(s.config.requestTimeoutMs, { type: 'seg.deadline', req });
    this.send(call);
  }

  wait(kind: 'peek' | 'take', req: number, key: string, afterId: number | undefined, timeoutMs: number | undefined): void {
    const s = this.s;
    if (s.reqs.has(req)) {
      s.counters.add('duplicateReq');
      return;
    }
    const bad = this.keyError(key);
    if (bad) return s.io.fail(req, bad);
    const after = afterId ?? 0;
    if (typeof after !== 'number' || !Number.isSafeInteger(after) || after < 0) return s.io.fail(req, `${kind} on segment '${key}': afterId must be a non-negative integer`);
    if (timeoutMs !== undefined && timeoutMs !== null && (typeof timeoutMs !== 'number' || !(timeoutMs >= 0) || !Number.isFinite(timeoutMs))) {
      return s.io.fail(req, `${kind} on segment '${key}': timeoutMs must be a non-negative number`);
    }
    const call: Call = { req, op: s.opIds.next(), kind, key, afterId: after, target: null, sentAt: -Infinity, registered: false, deadline: Infinity };
    if (typeof timeoutMs === 'number') {
      call.timeoutMs = timeoutMs;
      s.io.setTimer(timeoutMs, { type: 'seg.deadline', req });
    }
    this.add(call);
    this.send(call);
  }

  private add(call: Call): void {
    this.s.calls.set(call.op, call);
    if (call.req !== null) this.s.reqs.set(call.req, call.op);
  }

  private drop(call: Call): void {
    this.s.calls.delete(call.op);
    if (call.req !== null) this.s.reqs.delete(call.req);
  }

  /** (Re-)sends a call to the owner in my view. */
  private send(call: Call): void {
    const s = this.s;
    const target = s.ownerOf(call.key);
    call.target = target;
    call.sentAt = s.now;
    call.registered = false;
    const msg: ReqMsg = { type: 'seg.req', op: call.op, key: call.key, kind: call.kind };
    if (call.kind === 'put' || call.kind === 'update') msg.value = call.value;
    if (call.kind === 'peek' || call.kind === 'take') msg.afterId = call.afterId;
    if (call.kind === 'restore') {
      msg.id = call.id;
      msg.of = call.of;
    }
    s.send(target, msg);
  }

  /** The placement changed: calls whose owner moved go to the new one at once. */
  retarget(): void {
    for (const call of this.s.calls.values()) {
      if (this.s.ownerOf(call.key) !== call.target) this.send(call);
    }
  }

  onDeadline(req: number): void {
    const s = this.s;
    const op = s.reqs.get(req);
    const call = op === undefined ? undefined : s.calls.get(op);
    if (!call) return;
    if (call.kind === 'put' || call.kind === 'update') {
      this.drop(call);
      s.counters.add('requestsTimedOut');
      s.io.fail(
        req,
        `${call.kind} on segment '${call.key}': no acknowledgement from the owner (${call.target ?? 'unknown'}) within ${s.config.requestTimeoutMs} ms; it may still be applied`,
      );
      return;
    }
    if (call.kind === 'peek' || call.kind === 'take') {
      s.counters.add('waitsTimedOut');
      this.abortWait(call, `timeout: ${call.kind} on segment '${call.key}' found no item after id ${call.afterId} within ${call.timeoutMs ?? 0} ms`);
    }
  }

  cancel(req: number): void {
    const s = this.s;
    const op = s.reqs.get(req);
    const call = op === undefined ? undefined : s.calls.get(op);
    if (!call) return;
    if (call.kind !== 'peek' && call.kind !== 'take') {
      s.counters.add('cancelIgnored');
      return;
    }
    s.counters.add('waitsCancelled');
    this.abortWait(call, `cancelled: ${call.kind} on segment '${call.key}' was aborted`);
  }

  /** Reject a waiting call now; tell the owner; a take's late result will be put back. */
  private abortWait(call: Call, error: string): void {
    const s = this.s;
    this.drop(call);
    if (call.req !== null) s.io.fail(call.req, error);
    s.send(s.ownerOf(call.key), { type: 'seg.cancel', op: call.op, key: call.key });
    if (call.kind === 'take') s.cancelled.set(call.op, { key: call.key, at: s.now, confirmed: false, sentAt: s.now, restoring: false });
  }

  /** The owner's answer: settle the call (put/update reply the id, peek/take `{ id, value }`). */
  onReply(m: Extract<SegMessage, { type: 'seg.reply' }>): void {
    const s = this.s;
    const call = s.calls.get(m.op);
    if (!call) {
      const c = s.cancelled.get(m.op);
      if (!c) {
        s.counters.add('lateReplies');
        return;
      }
      c.confirmed = true;
      if (m.ok && typeof m.id === 'number' && !c.restoring) {
        // the take went through after we gave up: put the item back where it was
        c.restoring = true;
        s.counters.add('restores');
        const restore: Call = {
          req: null,
          op: s.opIds.next(),
          kind: 'restore',
          key: c.key,
          id: m.id,
          of: m.op,
          afterId: 0,
          target: null,
          sentAt: -Infinity,
          registered: false,
          deadline: s.now + s.config.requestTimeoutMs,
        };
        this.add(restore);
        this.send(restore);
      }
      return;
    }
    this.drop(call);
    if (call.kind === 'restore') {
      s.counters.add(m.ok ? 'restored' : 'restoreFailed');
      return;
    }
    if (call.req === null) return;
    if (!m.ok) {
      s.counters.add('requestsFailed');
      s.io.fail(call.req, m.error ?? `${call.kind} on segment '${call.key}' failed`);
      return;
    }
    s.counters.add('requestsOk');
    if (call.kind === 'put' || call.kind === 'update') s.io.reply(call.req, m.id ?? undefined);
    else s.io.reply(call.req, { id: m.id ?? undefined, value: cloneValue(m.value) });
  }

  onWait(from: NodeId, op: number): void {
    const call = this.s.calls.get(op);
    if (call && call.target === from) call.registered = true;
  }

  onRedirect(from: NodeId, op: number): void {
    const call = this.s.calls.get(op);
    if (call && call.target === from) {
      // re-sent to the owner in my view after `retransmitMs` (views may still be settling)
      call.target = null;
      call.sentAt = this.s.now;
      this.s.counters.add('redirected');
    }
  }

  /** Work pending on the next tick: calls, or cancelled takes still unconfirmed. */
  hasWork(): boolean {
    const s = this.s;
    if (s.calls.size > 0) return true;
    for (const c of s.cancelled.values()) if (!c.confirmed && s.now - c.at < s.config.requestTimeoutMs) return true;
    return false;
  }

  /** Periodic: re-send calls that are due, chase cancelled takes, give up stale restores. */
  tick(): void {
    const s = this.s;
    const c = s.config;
    for (const call of [...s.calls.values()]) {
      if (call.kind === 'restore' && s.now >= call.deadline) {
        this.drop(call);
        s.counters.add('restoreFailed');
        continue;
      }
      const due = call.target === null ? c.retransmitMs : call.registered ? c.keepaliveMs : c.retryIntervalMs;
      if (s.now - call.sentAt >= due) this.send(call);
    }
    for (const [op, x] of s.cancelled) {
      if (s.now - x.at >= c.dedupTtlMs) s.cancelled.delete(op);
      else if (!x.confirmed && s.now - x.at < c.requestTimeoutMs && s.now - x.sentAt >= c.retryIntervalMs) {
        x.sentAt = s.now;
        s.send(s.ownerOf(x.key), { type: 'seg.cancel', op, key: x.key });
      }
    }
  }
}
