import { Packr } from 'msgpackr';

/**
 * msgpack frames between peers. Decoding never throws: bad bytes become a typed
 * WireError that the caller counts and drops (DESIGN.md §2, wire/).
 */
export const MAX_FRAME_BYTES = 256 * 1024;

/** A frame that is never valid msgpack (0xc1 is "never used"): the link heartbeat. */
export const HEARTBEAT_FRAME = new Uint8Array([0xc1]);

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: 'number' });

export type WireErrorCode = 'too-large' | 'empty' | 'not-msgpack' | 'invalid';

export class WireError extends Error {
  constructor(
    readonly code: WireErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'WireError';
  }
}

export type Decoded<T> = { ok: true; msg: T } | { ok: false; error: WireError };

export type Validator = (v: unknown) => string | null;

export function encode(msg: unknown): Uint8Array {
  return packr.pack(msg);
}

export function decode<T>(bytes: Uint8Array, validate: Validator): Decoded<T> {
  if (bytes.byteLength === 0) return { ok: false, error: new WireError('empty', 'empty frame') };
  if (bytes.byteLength > MAX_FRAME_BYTES) {
    return { ok: false, error: new WireError('too-large', `frame of ${bytes.byteLength} bytes exceeds ${MAX_FRAME_BYTES}`) };
  }
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (e) {
    return { ok: false, error: new WireError('not-msgpack', `undecodable frame: ${(e as Error).message}`.slice(0, 200)) };
  }
  const reason = validate(value);
  if (reason !== null) return { ok: false, error: new WireError('invalid', reason.slice(0, 200)) };
  return { ok: true, msg: value as T };
}

/** Size of a value once encoded, for limits on KV values and chat text. */
export function encodedSize(value: unknown): number {
  return packr.pack(value).byteLength;
}

/** Base64 for frames relayed through the JSON signaling server. */
export function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function fromBase64(s: string): Uint8Array | null {
  try {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch (e) {
    if (e instanceof DOMException || e instanceof Error) return null;
    throw e;
  }
}
