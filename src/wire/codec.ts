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
/** Never valid msgpack either: "answer with a heartbeat now" (a link check, net/transport.ts). */
export const PROBE_FRAME = new Uint8Array([0xc1, 0x01]);

const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  moreTypes: false,
  structuredClone: false,
  int64AsType: 'number',
  copyBuffers: true,
});

/**
 * Deepest nesting of arrays and maps in a frame: a value's MAX_VALUE_DEPTH (32,
 * core/data-protocol) inside the deepest envelope (a route envelope, its message, a
 * batch, an item) with room to spare.
 */
export const MAX_WIRE_DEPTH = 40;

/**
 * Arrays, maps and binaries (binaries count 2) a frame of `bytes` may hold: one per two
 * bytes, the density core/data-protocol allows a value, plus slack for small values in
 * batches (a segment snapshot item `[id, []]`). Decoding then allocates at most about
 * 32 bytes of heap per frame byte.
 */
export const maxFrameAllocations = (bytes: number): number => 1024 + Math.floor(bytes / 2);

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

/**
 * Always a plain Uint8Array. msgpackr returns a `Buffer` wherever one is defined globally
 * (Node, and pages where a bundled polyfill defines it: simple-peer's prebuilt bundle
 * does), and a polyfilled Buffer embedded in another message would be encoded through its
 * `toJSON` as `{type: 'Buffer', data: [...]}` instead of as binary: a seal's signed bytes
 * (runtime/seals.ts) then arrive as an object and every signature check fails.
 */
export function encode(msg: unknown): Uint8Array {
  const b = packr.pack(msg);
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
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
export function decodeAll<T>(input: Uint8Array, validate: Validator, expand?: (v: unknown) => unknown): DecodedAll<T> {
  // Binaries are decoded as slices of the input, of the input's class: a frame from
  // simple-peer is a (polyfilled) Buffer, whose slices would be re-encoded through toJSON
  // when forwarded (see encode). Decode from a plain view of the same bytes.
  const bytes = input.constructor === Uint8Array ? input : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  if (bytes.byteLength === 0) return { msgs: [], errors: [new WireError('empty', 'empty frame')] };
  if (bytes.byteLength > MAX_FRAME_BYTES) {
    return { msgs: [], errors: [new WireError('too-large', `frame of ${bytes.byteLength} bytes exceeds ${MAX_FRAME_BYTES}`)] };
  }
  const scan = scanFrame(bytes);
  if (!scan.ok) return { msgs: [], errors: [new WireError(scan.code, scan.reason)] };
  let values: unknown[];
  try {
    values = packr.unpackMultiple(scan.end < bytes.byteLength ? bytes.subarray(0, scan.end) : bytes) as unknown[];
  } catch (e) {
    return { msgs: [], errors: [new WireError('not-msgpack', `undecodable frame: ${(e as Error).message}`.slice(0, 200))] };
  }
  const msgs: T[] = [];
  const errors: WireError[] = [];
  if (scan.end < bytes.byteLength) {
    errors.push(new WireError('invalid', `frame of more than ${MAX_MESSAGES_PER_FRAME} messages; the rest were dropped`));
  }
  for (const raw of values) {
    const value = expand ? expand(raw) : raw;
    const reason = validate(value);
    if (reason !== null) errors.push(new WireError('invalid', reason.slice(0, 200)));
    else msgs.push(value as T);
  }
  return { msgs, errors };
}

export type FrameScan = { ok: true; messages: number; end: number } | { ok: false; code: WireErrorCode; reason: string };

/**
 * Walks the msgpack structure of a frame without building it: counts its top-level
 * messages (`end`: the byte after the MAX_MESSAGES_PER_FRAME-th, the rest is not
 * decoded), and refuses extensions, nesting beyond MAX_WIRE_DEPTH, more allocations than
 * `maxFrameAllocations`, reserved bytes and truncation. O(items), no allocation beyond a
 * depth-sized stack.
 */
export function scanFrame(bytes: Uint8Array): FrameScan {
  const n = bytes.byteLength;
  const maxAlloc = maxFrameAllocations(n);
  // remaining[d]: items still to read in the container open at depth d
  const remaining = new Float64Array(MAX_WIRE_DEPTH + 1);
  let depth = 0;
  let pos = 0;
  let messages = 0;
  let allocations = 0;
  const bad = (code: WireErrorCode, reason: string): FrameScan => ({ ok: false, code, reason: `${reason} at byte ${pos}` });
  while (pos < n) {
    if (depth === 0) {
      if (messages === MAX_MESSAGES_PER_FRAME) return { ok: true, messages, end: pos };
      messages++;
    }
    const b = bytes[pos]!;
    let size = 1;
    let children = -1;
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) size = 1;
    else if (b <= 0x8f) children = 2 * (b & 0x0f);
    else if (b <= 0x9f) children = b & 0x0f;
    else if (b <= 0xbf) size = 1 + (b & 0x1f);
    else {
      const u8 = (at: number) => (at < n ? bytes[at]! : -1);
      const len = (k: number): number => {
        if (pos + k >= n) return -1;
        let v = 0;
        for (let i = 1; i <= k; i++) v = v * 256 + bytes[pos + i]!;
        return v;
      };
      switch (b) {
        case 0xc4: case 0xc5: case 0xc6: {
          const k = b === 0xc4 ? 1 : b === 0xc5 ? 2 : 4;
          const l = len(k);
          if (l < 0) return bad('not-msgpack', 'truncated binary');
          size = 1 + k + l;
          allocations += 2;
          break;
        }
        case 0xd9: case 0xda: case 0xdb: {
          const k = b === 0xd9 ? 1 : b === 0xda ? 2 : 4;
          const l = len(k);
          if (l < 0) return bad('not-msgpack', 'truncated string');
          size = 1 + k + l;
          break;
        }
        case 0xca: size = 5; break;
        case 0xcb: size = 9; break;
        case 0xcc: case 0xd0: size = 2; break;
        case 0xcd: case 0xd1: size = 3; break;
        case 0xce: case 0xd2: size = 5; break;
        case 0xcf: case 0xd3: size = 9; break;
        case 0xdc: case 0xdd: {
          const l = len(b === 0xdc ? 2 : 4);
          if (l < 0) return bad('not-msgpack', 'truncated array');
          size = b === 0xdc ? 3 : 5;
          children = l;
          break;
        }
        case 0xde: case 0xdf: {
          const l = len(b === 0xde ? 2 : 4);
          if (l < 0) return bad('not-msgpack', 'truncated map');
          size = b === 0xde ? 3 : 5;
          children = 2 * l;
          break;
        }
        case 0xd4:
          // fixext 1 of type 0 is `undefined`; every other extension is refused
          if (u8(pos + 1) === 0 && pos + 2 < n) {
            size = 3;
            break;
          }
          return bad('not-msgpack', 'msgpack extension');
        case 0xc1:
          // never used by msgpack: the heartbeat frame, or a peer's garbage
          return bad('invalid', 'reserved byte 0xc1');
        default:
          // ext 8/16/32 (0xc7-0xc9), fixext 2-16 (0xd5-0xd8)
          return bad('not-msgpack', 'msgpack extension');
      }
    }
    if (children >= 0) {
      allocations++;
      // every item takes at least one byte
      if (children > n - pos - size) return bad('not-msgpack', 'container longer than the frame');
    }
    if (allocations > maxAlloc) return bad('too-large', `more than ${maxAlloc} arrays, maps and binaries in a frame of ${n} bytes`);
    pos += size;
    if (pos > n) return bad('not-msgpack', 'truncated value');
    if (depth > 0) remaining[depth] = remaining[depth]! - 1;
    if (children > 0) {
      if (depth === MAX_WIRE_DEPTH) return bad('too-large', `nested deeper than ${MAX_WIRE_DEPTH}`);
      remaining[++depth] = children;
    }
    while (depth > 0 && remaining[depth] === 0) depth--;
  }
  if (depth > 0) return bad('not-msgpack', 'truncated frame');
  return { ok: true, messages, end: n };
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
