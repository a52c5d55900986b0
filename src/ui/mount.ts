import { mount, unmount } from 'svelte';
import type { P2PApi } from '../runtime/api';
import App from './App.svelte';

/** Mounts the UI for `node` (the real node, or createMockNode() for ?mock=1). Returns an unmount function. */
export function mountApp(target: HTMLElement, node: P2PApi): () => void {
  const app = mount(App, { target, props: { node } });
  return () => {
    void unmount(app);
  };
}
