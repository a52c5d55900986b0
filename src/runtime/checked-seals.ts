/**
 * Signatures already checked, by signature, with the exact transcript and public key
 * they were checked against: a later copy of the same signed thing (another replica's
 * answer, a repair, an item served after it was replicated) needs no verification, while
 * the same signature on other bytes is checked afresh. Bounded by entries and bytes
 * (oldest dropped). Used for KV entry seals (seals.ts) and queue item seals (seg-seals.ts).
 */
import { equalBytes } from '../trust/bytes';

export class CheckedSeals {
  private readonly ok = new Map<string, { t: Uint8Array; k: Uint8Array }>();
  private bytes = 0;

  constructor(
    private readonly maxEntries = 16_384,
    private readonly maxBytes = 8 * 1024 * 1024,
  ) {}

  has(sig: string, t: Uint8Array, k: Uint8Array): boolean {
    const c = this.ok.get(sig);
    return c !== undefined && equalBytes(c.t, t) && equalBytes(c.k, k);
  }

  add(sig: string, t: Uint8Array, k: Uint8Array): void {
    if (this.ok.has(sig)) return;
    this.ok.set(sig, { t, k });
    this.bytes += t.byteLength;
    while (this.ok.size > this.maxEntries || this.bytes > this.maxBytes) {
      const [first, c] = this.ok.entries().next().value as [string, { t: Uint8Array }];
      this.ok.delete(first);
      this.bytes -= c.t.byteLength;
    }
  }
}

export function sigKey(s: Uint8Array): string {
  let out = '';
  for (let i = 0; i < s.byteLength; i++) out += String.fromCharCode(s[i]!);
  return out;
}

