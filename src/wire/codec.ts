import { Packr } from 'msgpackr';

/**
 * msgpack frames between peers. Decoding never throws: bad bytes become a typed
 * WireError that the caller counts and drops (docs/architecture.md, wire/).
 *
 * A frame (one data-channel message) carries one or more encoded messages back to back:
 * the transport coalesces the messages a tab sends to one peer within a task
 * (`concatFrames`), and `decodeAll` splits them again. One message alone is the simplest
 * such frame, so `encode` output is always a valid frame.
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

/** A frame that must hold exactly one message (decodeAll with that rule). */
export function decode<T>(bytes: Uint8Array, validate: Validator): Decoded<T> {
  const r = decodeAll<T>(bytes, validate);
  if (r.errors.length > 0) return { ok: false, error: r.errors[0]! };
  if (r.msgs.length !== 1) return { ok: false, error: new WireError('invalid', `expected one message, got ${r.msgs.length}`) };
  return { ok: true, msg: r.msgs[0]! };
}

/** The messages of a frame, each validated on its own; an undecodable frame is one error. */
export interface DecodedAll<T> {
  msgs: T[];
  errors: WireError[];
}

/** At most this many messages are taken from one frame; the rest are one error. */
export const MAX_MESSAGES_PER_FRAME = 4096;

/**
 * `expand` (optional) turns each decoded value into the message to validate: the compact
 * wire forms (core/wire.ts). It must not throw.
 */
export function decodeAll<T>(bytes: Uint8Array, validate: Validator, expand?: (v: unknown) => unknown): DecodedAll<T> {
  if (bytes.byteLength === 0) return { msgs: [], errors: [new WireError('empty', 'empty frame')] };
  if (bytes.byteLength > MAX_FRAME_BYTES) {
    return { msgs: [], errors: [new WireError('too-large', `frame of ${bytes.byteLength} bytes exceeds ${MAX_FRAME_BYTES}`)] };
  }
  let values: unknown[];
  try {
    values = packr.unpackMultiple(bytes) as unknown[];
  } catch (e) {
    return { msgs: [], errors: [new WireError('not-msgpack', `undecodable frame: ${(e as Error).message}`.slice(0, 200))] };
  }
  const msgs: T[] = [];
  const errors: WireError[] = [];
  if (values.length > MAX_MESSAGES_PER_FRAME) {
    errors.push(new WireError('invalid', `frame of ${values.length} messages exceeds ${MAX_MESSAGES_PER_FRAME}; the rest were dropped`));
    values = values.slice(0, MAX_MESSAGES_PER_FRAME);
  }
  for (const raw of values) {
    const value = expand ? expand(raw) : raw;
    const reason = validate(value);
    if (reason !== null) errors.push(new WireError('invalid', reason.slice(0, 200)));
    else msgs.push(value as T);
  }
  return { msgs, errors };
}

/**
 * Coalesce encoded messages into as few frames as possible, none above `maxBytes` unless a
 * single message is larger (it then travels alone). Order is kept.
 */
export function concatFrames(frames: readonly Uint8Array[], maxBytes: number): Uint8Array[] {
  if (frames.length === 1) return [frames[0]!];
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < frames.length) {
    let j = i;
    let size = 0;
    while (j < frames.length && (j === i || size + frames[j]!.byteLength <= maxBytes)) size += frames[j++]!.byteLength;
    if (j === i + 1) out.push(frames[i]!);
    else {
      const buf = new Uint8Array(size);
      let at = 0;
      for (let k = i; k < j; k++) {
        buf.set(frames[k]!, at);
        at += frames[k]!.byteLength;
      }
      out.push(buf);
    }
    i = j;
  }
  return out;
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
