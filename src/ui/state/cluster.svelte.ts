/** This node and the overlay as the UI sees them: refreshed on peers/members/signaling events and every second. */
import type { LinkInfo, MemberView, NodeId, NodeInfo, P2PApi } from '../../runtime/api';
import { errorMessage, shortId } from '../lib/format';
import { same, subscribe } from './poll';

export class ClusterState {
  info = $state.raw<NodeInfo>() as NodeInfo;
  /** HyParView active view. */
  activeView = $state.raw<NodeId[]>([]);
  /** HyParView passive view. */
  passiveView = $state.raw<NodeId[]>([]);
  /** Every member this node knows, including suspect/dead/left ones. */
  memberViews = $state.raw<MemberView[]>([]);
  /** WebRTC links: open (with path and RTT), connecting, unreachable (with the reason). */
  links = $state.raw<LinkInfo[]>([]);
  error = $state<string | null>(null);

  readonly nicks = $derived(new Map(this.memberViews.map((m) => [m.id, m.nick])));
  /** Members (this node first, then by nickname), with this node added if the node does not list itself. */
  readonly members = $derived.by((): MemberView[] => {
    const list = [...this.memberViews];
    if (!list.some((m) => m.id === this.info.id)) {
      list.push({ id: this.info.id, nick: this.info.nick, status: 'alive', incarnation: 0, active: this.activeView, rooms: [] });
    }
    const rank = (m: MemberView) => (m.id === this.info.id ? 0 : m.status === 'alive' ? 1 : m.status === 'suspect' ? 2 : 3);
    return list.sort((a, b) => rank(a) - rank(b) || a.nick.localeCompare(b.nick) || a.id.localeCompare(b.id));
  });
  readonly liveCount = $derived(this.members.filter((m) => m.status === 'alive' || m.status === 'suspect').length);
  /** Nobody else around: show the "open another tab" empty state. */
  readonly alone = $derived(this.activeView.length === 0 && this.liveCount <= 1);

  private readonly node: P2PApi;

  constructor(node: P2PApi) {
    this.node = node;
    try {
      this.info = node.info();
    } catch (e) {
      this.info = { id: node.id, nick: '', cluster: '', signaling: [], eager: [], lazy: [], state: 'joining' };
      this.error = `Could not read the node's state: ${errorMessage(e)}`;
    }
    this.refresh();
  }

  connect(): () => void {
    return subscribe(
      this.node,
      (e) => {
        if (e.type === 'peers' || e.type === 'members' || e.type === 'signaling') this.refresh();
      },
      () => this.refresh(),
    );
  }

  refresh(): void {
    try {
      const info = this.node.info();
      if (!same(info, this.info)) this.info = info;
      const active = this.node.peers();
      if (!same(active, this.activeView)) this.activeView = active;
      const passive = this.node.passive();
      if (!same(passive, this.passiveView)) this.passiveView = passive;
      const views = this.node.memberViews();
      if (!same(views, this.memberViews)) this.memberViews = views;
      const links = this.node.links();
      if (!same(links, this.links)) this.links = links;
      this.error = null;
    } catch (e) {
      this.error = `Could not read the node's state: ${errorMessage(e)}`;
    }
  }

  /** "nick" for a known member, the short id otherwise. */
  nickOf(id: NodeId): string {
    return this.nicks.get(id) ?? (id === this.info.id ? this.info.nick : shortId(id));
  }

  /** "nick (abc123)" for lists where ids matter. */
  label(id: NodeId): string {
    return `${this.nickOf(id)} (${shortId(id)})`;
  }
}
