/** Acknowledgements wait for the disk: the gate against a store whose commits the test controls. */
import { describe, expect, it } from 'vitest';
import { DROP, DurableAcks, MAX_HELD, type DurableStore } from './durable-acks';

/** A store with one batch at a time, committed or failed by the test. */
class ManualStore implements DurableStore {
  uncommitted = false;
  private batch: { promise: Promise<boolean>; settle: (ok: boolean) => void } | null = null;
  write(): void {
    this.uncommitted = true;
  }
  durable(): Promise<boolean> {
    if (!this.batch) {
      let settle!: (ok: boolean) => void;
      const promise = new Promise<boolean>((r) => (settle = r));
      this.batch = { promise, settle };
    }
    return this.batch.promise;
  }
  async commit(ok: boolean): Promise<void> {
    const b = this.batch;
    this.batch = null;
    this.uncommitted = !ok;
    b?.settle(ok);
    await new Promise((r) => setTimeout(r, 0));
  }
}

describe('DurableAcks', () => {
  it('sends at once when nothing is waiting for the disk', () => {
    const gate = new DurableAcks(new ManualStore());
    const sent: string[] = [];
    gate.after(() => sent.push('ack'), DROP);
    expect(sent).toEqual(['ack']);
    expect(gate.counters.held).toBe(0);
  });

  it('holds acknowledgements until the writes before them commit, then sends them in order', async () => {
    const store = new ManualStore();
    const gate = new DurableAcks(store);
    const sent: string[] = [];
    store.write();
    gate.after(() => sent.push('a1'), DROP);
    gate.after(() => sent.push('a2'), DROP);
    expect(sent).toEqual([]);
    await store.commit(true);
    expect(sent).toEqual(['a1', 'a2']);
    expect(gate.counters.held).toBe(2);
    // and afterwards, straight through again
    gate.after(() => sent.push('a3'), DROP);
    expect(sent).toEqual(['a1', 'a2', 'a3']);
  });

  it('an acknowledgement after the commit but before the release still waits its turn', async () => {
    const store = new ManualStore();
    const gate = new DurableAcks(store);
    const sent: string[] = [];
    store.write();
    gate.after(() => sent.push('first'), DROP);
    const b = store.commit(true); // committed; release not yet run
    gate.after(() => sent.push('second'), DROP);
    await b;
    expect(sent).toEqual(['first', 'second']);
  });

  it('a failed write drops the acknowledgements it held and fails the replies it held', async () => {
    const store = new ManualStore();
    const gate = new DurableAcks(store);
    const sent: string[] = [];
    const replies: string[] = [];
    store.write();
    gate.after(() => sent.push('ack'), DROP);
    gate.after(
      () => replies.push('ok'),
      () => replies.push('error'),
    );
    await store.commit(false);
    expect(sent).toEqual([]);
    expect(replies).toEqual(['error']);
    expect(gate.counters).toEqual({ held: 2, dropped: 1, failedReplies: 1 });
    // the retry succeeds: what is acknowledged next goes out
    gate.after(() => sent.push('later'), DROP);
    await store.commit(true);
    expect(sent).toEqual(['later']);
  });

  it('without persistence nothing waits', () => {
    const gate = new DurableAcks(null);
    const sent: string[] = [];
    gate.after(() => sent.push('ack'), DROP);
    expect(sent).toEqual(['ack']);
  });

  it('a disk that never answers holds at most MAX_HELD; past it, acks are dropped and replies fail at once', async () => {
    const store = new ManualStore();
    const gate = new DurableAcks(store);
    store.write();
    for (let i = 0; i < MAX_HELD; i++) gate.after(() => undefined, DROP);
    const replies: string[] = [];
    gate.after(
      () => replies.push('ok'),
      () => replies.push('error'),
    );
    gate.after(() => replies.push('sent'), DROP);
    expect(replies).toEqual(['error']);
    expect(gate.counters).toMatchObject({ held: MAX_HELD, dropped: 1, failedReplies: 1 });
    // once the disk answers, holding works again
    await store.commit(true);
    store.write();
    gate.after(() => replies.push('later'), DROP);
    await store.commit(true);
    expect(replies).toEqual(['error', 'later']);
  });
});
