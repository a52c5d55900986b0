/**
 * The Yjs side of `npm run bench`: one Y.Doc shared through y-webrtc.
 *   ?room=NAME&signaling=ws://host:port
 * Chat is the Y.Array 'chat', the KVS the Y.Map 'kv'. The bench drives it through
 * `window.bench` (see ../page.ts). No UI.
 */
import * as Y from 'yjs';
import { WebrtcProvider } from 'y-webrtc';
import type { YjsBenchGlobal } from '../types';

const q = new URLSearchParams(location.search);
const room = q.get('room');
const signaling = q.get('signaling');
if (!room || !signaling) throw new Error('bench page needs ?room=…&signaling=…');

const doc = new Y.Doc();
const provider = new WebrtcProvider(room, doc, {
  signaling: [signaling],
  // same machine: host candidates only, like our app's default
  peerOpts: { config: { iceServers: [] } },
});

const bench: YjsBenchGlobal = { Y, doc, provider, chat: doc.getArray<string>('chat'), kv: doc.getMap<string>('kv') };
(window as unknown as { bench: YjsBenchGlobal }).bench = bench;
