/**
 * UI preview without a node: `npx vite`, then open /src/ui/dev/index.html. Mounts the app
 * on a seeded in-memory mock (../mock-node.ts); the query string sets its options:
 * `peers=N` (0: the "alone" state), `churn=0`, `chatter=0`, `seed=N`, `nick=NAME`,
 * `keys=N`. A value that is not a whole number ≥ 0 is reported on the page and the
 * default is used.
 */
import { createMockNode, type MockNodeOptions } from '../mock-node';
import { mountApp } from '../mount';

const params = new URLSearchParams(location.search);
const problems: string[] = [];

function count(name: string): number | undefined {
  const raw = params.get(name);
  if (raw === null) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < 0) {
    problems.push(`${name}=${raw} is not a whole number ≥ 0; the default is used`);
    return undefined;
  }
  return n;
}

const opts: MockNodeOptions = {
  peers: count('peers'),
  seed: count('seed'),
  keys: count('keys'),
  churn: params.get('churn') !== '0',
  chatter: params.get('chatter') !== '0',
  nick: params.get('nick') || undefined,
};

const target = document.getElementById('app')!;
if (problems.length) {
  const note = document.createElement('p');
  note.setAttribute('role', 'alert');
  note.textContent = problems.join('; ');
  document.body.prepend(note);
}
mountApp(target, createMockNode(opts));
