/** URLs for "Open another node" and "Copy share link". */
import { secretFragment } from '../../runtime/cluster-secret';

/** Parameters that make a new tab join the same cluster the same way (relay-only and
 * ICE overrides included: a user hiding their address keeps hiding it). */
const CARRIED = ['cluster', 'signaling', 'mock', 'relay', 'ice'] as const;

/**
 * Same page, same cluster/signaling (and mock) parameters; nick is per tab, so not carried.
 * The cluster secret, when there is one, goes in the fragment (never sent to a server).
 */
export function anotherNodeUrl(current: URL, cluster: string, secret: string | null = null): string {
  const url = new URL(current.pathname, current.origin);
  for (const p of CARRIED) {
    const v = current.searchParams.get(p);
    if (v !== null) url.searchParams.set(p, v);
  }
  url.searchParams.set('cluster', cluster);
  if (secret !== null) url.hash = secretFragment(secret);
  return url.toString();
}

/** A link someone else can open to join this cluster (with its secret in the fragment, if any). */
export function shareUrl(current: URL, cluster: string, secret: string | null = null): string {
  const url = new URL(current.pathname, current.origin);
  url.searchParams.set('cluster', cluster);
  const signaling = current.searchParams.get('signaling');
  if (signaling !== null) url.searchParams.set('signaling', signaling);
  // a tab opened from the link asks for the same replica count
  const replicas = current.searchParams.get('replicas');
  if (replicas !== null) url.searchParams.set('replicas', replicas);
  if (secret !== null) url.hash = secretFragment(secret);
  return url.toString();
}
