/**
 * The cluster secret's layer around the signaling client: what SignalingBridge publishes
 * and receives goes through here, and with a secret nothing the bridge says reaches the
 * server in clear.
 *
 * The bridge names topics as in an open cluster (`<cluster>` for announces, `<cluster>/<id>`
 * for a node's inbox). Without a secret they go to the server as they are. With one:
 *   - topics are renamed: `<cluster>` → HMAC(K_topic, "cluster"), `<cluster>/<id>` →
 *     HMAC(K_topic, "node|" + id) (truncated, see trust/secret.ts), so a client without
 *     the secret cannot find the cluster nor tell whose inbox a topic is;
 *   - every payload is `{c: base64(iv | AES-GCM(K_enc, iv, JSON, aad = wire topic))}`: a
 *     payload that fails to decrypt (wrong secret, tampered, moved to another topic) is
 *     dropped and counted (`drop.secret`);
 *   - the pool's message ids (`mid`, in clear beside `c` for de-duplication) are built on a
 *     random tag instead of the node id.
 * Encryption and decryption are asynchronous; one promise chain each way keeps the order
 * in which the bridge published (an offer before its candidates) and in which the server
 * delivered.
 *
 * Tabs with different secrets for one cluster meet nowhere else, so they also use a lobby
 * topic derived from the cluster name alone: each publishes a sealed presence there when a
 * server connection opens, and answers a presence it cannot decrypt with its own (a token
 * bucket bounds the answers, so garbage published there costs each tab little). A tab that
 * has seen WRONG_SECRET_AFTER undecryptable payloads and not one from another tab that
 * decrypts is told "wrong secret?" (`status().wrongSecret`).
 */
import { SignalingPool, type SignalingOptions as PoolOptions, type WebSocketLike } from '../net/signaling';
import { decryptPayload, encryptPayload } from '../trust/secret';
import { fromUtf8, utf8 } from '../trust/bytes';
import type { ClusterSecret } from './cluster-secret';
import type { SecretStatus, SignalingState } from './api';

export type { SecretStatus } from './api';
import type { Stats } from './stats';

/** What SignalingBridge needs of the signaling servers. */
export interface SignalingChannel {
  subscribe(topic: string): void;
  publish(topic: string, data: Record<string, unknown>): void;
  /** What the servers publish on `topic` when our connection to them closes; null: nothing. */
  setWill(topic: string, data: Record<string, unknown> | null): void;
  isOpen(): boolean;
  states(): { url: string; state: SignalingState }[];
  close(): void;
}

export const WRONG_SECRET_AFTER = 2;
/** Lobby answers: a burst of LOBBY_BURST, then one per LOBBY_REFILL_MS. */
const LOBBY_BURST = 3;
const LOBBY_REFILL_MS = 20_000;
/** Largest sealed payload accepted (base64 characters): a relayed frame's bound plus overhead. */
const MAX_SEALED_CHARS = 600_000;

type PoolHandlers = Pick<PoolOptions, 'onPublish' | 'onState' | 'onError' | 'WebSocketImpl'> & { preopened?: Map<string, WebSocketLike> };

export interface ChannelOptions {
  urls: string[];
  id: string;
  cluster: string;
  secret?: ClusterSecret;
  /** Called when status() changes. */
  onStatus?: () => void;
  /** Time (ms), for the lobby's token bucket. */
  now?: () => number;
}

/** The signaling servers as the bridge sees them: plain without a secret, sealed with one. */
export function openSignalingChannel(o: ChannelOptions, pool: PoolHandlers, stats: Stats): SignalingChannel & { status(): SecretStatus } {
  if (!o.secret) {
    const plain = new SignalingPool(o.urls, o.id, pool);
    const status: SecretStatus = { protected: false, undecryptable: 0, decrypted: 0, wrongSecret: false };
    return {
      subscribe: (t) => plain.subscribe(t),
      publish: (t, d) => void plain.publish(t, d),
      setWill: (t, d) => plain.setWill(t, d),
      isOpen: () => plain.isOpen(),
      states: () => plain.states(),
      close: () => plain.close(),
      status: () => status,
    };
  }
  return new SealedSignaling(o, o.secret, pool, stats);
}

/** Message-id tag of the pool: random, so that ids in clear name no node. */
function randomTag(): string {
  const b = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export class SealedSignaling implements SignalingChannel {
  private readonly pool: SignalingPool;
  /** Wire topic → the bridge's name for it, for the topics we subscribed. */
  private readonly logical = new Map<string, string>();
  private out: Promise<void> = Promise.resolve();
  private in: Promise<void> = Promise.resolve();
  private readonly counts = { undecryptable: 0, decrypted: 0 };
  private wrong = false;
  private tokens = LOBBY_BURST;
  private refilledAt: number;
  private readonly now: () => number;
  /** Raised by every setWill: a will still being sealed when a newer call came is not set. */
  private willEpoch = 0;

  constructor(
    private readonly o: ChannelOptions,
    private readonly secret: ClusterSecret,
    handlers: PoolHandlers,
    private readonly stats: Stats,
  ) {
    this.now = o.now ?? Date.now;
    this.refilledAt = this.now();
    this.pool = new SignalingPool(o.urls, randomTag(), {
      ...handlers,
      onPublish: (topic, data, clients, url, own) => this.receive(topic, data, clients, url, own === true, handlers.onPublish),
      onState: (url, state) => {
        if (state === 'open') this.presence();
        handlers.onState(url, state);
      },
    });
    this.pool.subscribe(secret.lobbyTopic);
    stats.set('secret.kdfMs', secret.derivation.ms);
    stats.set('secret.cachedKeys', secret.derivation.cached ? 1 : 0);
  }

  status(): SecretStatus {
    return { protected: true, ...this.counts, wrongSecret: this.wrong };
  }

  subscribe(topic: string): void {
    this.chainOut(async () => {
      const wire = await this.wireTopic(topic);
      this.logical.set(wire, topic);
      this.pool.subscribe(wire);
    });
  }

  publish(topic: string, data: Record<string, unknown>): void {
    this.chainOut(async () => {
      const wire = await this.wireTopic(topic);
      const c = await encryptPayload(this.secret.keys, utf8(JSON.stringify(data)), wire);
      this.pool.publish(wire, { c });
    });
  }

  /** Sealed like a publish. Clearing is synchronous (a closing page may not wait for the chain). */
  setWill(topic: string, data: Record<string, unknown> | null): void {
    const epoch = ++this.willEpoch;
    if (data === null) return this.pool.setWill('', null);
    this.chainOut(async () => {
      const wire = await this.wireTopic(topic);
      const c = await encryptPayload(this.secret.keys, utf8(JSON.stringify(data)), wire);
      if (epoch === this.willEpoch) this.pool.setWill(wire, { c });
    });
  }

  isOpen(): boolean {
    return this.pool.isOpen();
  }

  states(): { url: string; state: SignalingState }[] {
    return this.pool.states();
  }

  close(): void {
    this.pool.close();
  }

  /** The server's name of a topic the bridge names `<cluster>` or `<cluster>/<id>`. */
  private async wireTopic(topic: string): Promise<string> {
    if (topic === this.o.cluster) return this.secret.clusterTopic;
    const prefix = `${this.o.cluster}/`;
    if (topic.startsWith(prefix)) return this.secret.nodeTopic(topic.slice(prefix.length));
    throw new Error(`signaling: no sealed name for topic ${topic.slice(0, 40)}`);
  }

  private chainOut(fn: () => Promise<void>): void {
    this.out = this.out.then(fn).catch((e: unknown) => this.stats.error('signaling seal', e));
  }

  private receive(topic: string, data: Record<string, unknown>, clients: number, url: string, own: boolean, deliver: PoolOptions['onPublish']): void {
    const lobby = topic === this.secret.lobbyTopic;
    const name = lobby ? null : this.logical.get(topic);
    if (!lobby && name === undefined) return this.stats.count('drop.secret', 1, 'publish on a topic we did not subscribe');
    const c = data.c;
    if (typeof c !== 'string' || c.length > MAX_SEALED_CHARS) return this.undecryptable(lobby && !own, 'not a sealed payload');
    this.in = this.in
      .then(async () => {
        const plain = await decryptPayload(this.secret.keys, c, topic);
        if (!plain) return this.undecryptable(lobby && !own, 'does not decrypt');
        if (!own) this.decryptedOne();
        if (lobby) return; // a presence of a tab with our secret: nothing more to do
        const text = fromUtf8(plain);
        let value: unknown;
        try {
          value = text === null ? null : JSON.parse(text);
        } catch (e) {
          if (!(e instanceof SyntaxError)) throw e;
          value = null;
        }
        if (typeof value !== 'object' || value === null || Array.isArray(value)) {
          return this.stats.count('drop.secret', 1, 'decrypted payload is not a JSON object');
        }
        deliver(name!, value as Record<string, unknown>, clients, url, own);
      })
      .catch((e: unknown) => this.stats.error('signaling unseal', e));
  }

  private undecryptable(answer: boolean, why: string): void {
    this.counts.undecryptable++;
    this.stats.count('drop.secret', 1, why);
    if (!this.wrong && this.counts.decrypted === 0 && this.counts.undecryptable >= WRONG_SECRET_AFTER) {
      this.wrong = true;
      this.o.onStatus?.();
    }
    if (answer) this.presence();
  }

  private decryptedOne(): void {
    this.counts.decrypted++;
    if (this.wrong) {
      this.wrong = false;
      this.o.onStatus?.();
    }
  }

  /** A sealed presence on the lobby, when the token bucket allows one. */
  private presence(): void {
    const now = this.now();
    const refill = Math.floor((now - this.refilledAt) / LOBBY_REFILL_MS);
    if (refill > 0) {
      this.tokens = Math.min(LOBBY_BURST, this.tokens + refill);
      this.refilledAt += refill * LOBBY_REFILL_MS;
    }
    if (this.tokens < 1) return;
    this.tokens--;
    const lobby = this.secret.lobbyTopic;
    this.chainOut(async () => {
      this.pool.publish(lobby, { c: await encryptPayload(this.secret.keys, utf8('presence'), lobby) });
    });
  }
}
