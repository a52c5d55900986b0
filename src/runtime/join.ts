/**
 * Where the node stands in its cluster, and the `ready` promise:
 *
 *   joining --(a neighbour, and membership lists someone else)--> joined  (ready)
 *   joining --(no signaling server within aloneAfterMs, or our
 *              announce came back with nobody else subscribed)--> alone   (ready)
 *   joined  --(active view empty)--> joining
 *   any     --(leave)--> left
 *
 * A reloaded tab rejoins through the overlay neighbours its previous page had
 * (`contacts`): PREDIAL of them are dialled as soon as signaling is up, while the
 * persisted state loads, and all are handed to the overlay at start; links to contacts
 * the overlay did not take up are closed after CONTACT_GRACE_MS.
 */
import type { CoreQueries } from '../core/node';
import type { NodeInfo } from './api';

/** Contacts dialled before start; the overlay asks the others itself. */
const PREDIAL = 2;
/** How long a contact's link may stay open without the overlay using it. */
const CONTACT_GRACE_MS = 10_000;
/** Default `aloneAfterMs`. */
const ALONE_AFTER_MS = 10_000;

export type JoinStateName = NodeInfo['state'];

/** What the join state machine reads and does. */
export interface JoinDeps {
  query: CoreQueries;
  /** The core driver: `start` ran / the node stopped; runs `fn` later unless stopped. */
  driver: { readonly started: boolean; readonly stopped: boolean; schedule(fn: () => void, delay: number): void };
  signalingOpen(): boolean;
  /** Publish an isolated announce. */
  announce(): void;
  dial(peer: string): void;
  close(peer: string): void;
  /** The state changed in a way the UI shows (a `peers` event). */
  changed(): void;
}

export class JoinState {
  readonly ready: Promise<void>;
  private resolveReady!: () => void;
  private state_: JoinStateName = 'joining';
  /** Contacts without this node. */
  readonly contacts: string[];
  /** Contacts not dialled yet (dialled once signaling is up). */
  private toDial: string[];

  /** `aloneAfterMs`: resolve `ready` as alone when no signaling server answered by then. */
  constructor(
    id: string,
    contacts: string[] | undefined,
    private readonly deps: JoinDeps,
    aloneAfterMs = ALONE_AFTER_MS,
  ) {
    this.ready = new Promise<void>((r) => (this.resolveReady = r));
    this.contacts = (contacts ?? []).filter((c) => c !== id);
    this.toDial = [...this.contacts];
    deps.driver.schedule(() => {
      if (this.state_ === 'joining' && !deps.signalingOpen()) this.becomeReady('alone');
    }, aloneAfterMs);
  }

  get state(): JoinStateName {
    return this.state_;
  }

  /** The core started with `contacts`: close the links it does not use after a grace. */
  started(): void {
    const contacts = this.contacts;
    if (contacts.length) this.deps.driver.schedule(() => this.dropUnusedContacts(contacts), CONTACT_GRACE_MS);
  }

  /** A signaling server is open (again). */
  onSignalingOpen(): void {
    const { driver, query } = this.deps;
    if (driver.stopped) return;
    // A reload: dial a couple of the previous neighbours now, the overlay asks them (and
    // the rest) once started. One accepting neighbour makes the node ready; each dial
    // costs both tabs some main thread (about 15-20 ms for the RTCPeerConnection alone).
    const dial = this.toDial.splice(0);
    for (const c of dial.slice(0, PREDIAL)) this.deps.dial(c);
    // after a (re)connect with an empty active view, announce again (a reload with
    // contacts announces at start instead, if it still needs to)
    if (query.overlay.active().length === 0 && (dial.length === 0 || driver.started)) this.deps.announce();
  }

  /** Our own announce came back with `clients` subscribers (us included). */
  onOwnAnnounce(clients: number): void {
    if (clients <= 1 && this.state_ === 'joining' && this.deps.driver.started) this.becomeReady('alone');
  }

  /** The neighbours or the members changed. */
  check(): void {
    const active = this.deps.query.overlay.active().length;
    if (active > 0 && this.state_ !== 'joined' && this.state_ !== 'left') {
      if (this.deps.query.members.live().length > 1) this.becomeReady('joined');
    } else if (this.state_ === 'joined' && active === 0) {
      this.state_ = 'joining';
    }
  }

  left(): void {
    this.state_ = 'left';
  }

  private becomeReady(state: 'joined' | 'alone'): void {
    this.state_ = state;
    this.resolveReady();
    this.deps.changed();
  }

  /** Links dialled to contacts that the overlay did not take up (neither neighbour nor asked). */
  private dropUnusedContacts(contacts: string[]): void {
    const { overlay } = this.deps.query;
    const used = new Set([...overlay.active(), ...overlay.pending()]);
    for (const c of contacts) if (!used.has(c)) this.deps.close(c);
  }
}
