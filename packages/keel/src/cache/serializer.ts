/**
 * How values become bytes for L2 and for L1's byte bound. JSON by default; any
 * `{ serialize, deserialize }` pair (msgpackr, v8.serialize, …) plugs in.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';

/** Turns values into bytes and back. `serialize` may return a string (measured as UTF-8). */
export interface Serializer {
  serialize(value: unknown): string | Uint8Array;
  deserialize(bytes: Buffer): unknown;
}

/**
 * The default serializer: `JSON.stringify` / `JSON.parse`.
 *
 * @example
 * ```ts
 * import { jsonSerializer } from 'keel/cache';
 * const bytes = jsonSerializer.serialize({ a: 1 }); // '{"a":1}'
 * ```
 */
export const jsonSerializer: Serializer = Object.freeze({
  serialize: (value: unknown) => JSON.stringify(value),
  deserialize: (bytes: Buffer) => JSON.parse(bytes.toString('utf8')) as unknown,
});

/** Bytes of a serialized value as a Buffer (no copy for Buffers and Uint8Arrays). */
export function toBuffer(bytes: string | Uint8Array): Buffer {
  if (typeof bytes === 'string') return Buffer.from(bytes, 'utf8');
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Size in bytes of a serialized value, without encoding strings into a new buffer. */
export function byteSize(bytes: string | Uint8Array): number {
  return typeof bytes === 'string' ? Buffer.byteLength(bytes, 'utf8') : bytes.byteLength;
}

/**
 * Compresses a payload when it is at least `threshold` bytes and compression saves space.
 * Synchronous deflate-raw: about 30 µs for 16 KiB here, paid on writes only, and it avoids a
 * thread-pool round trip per write.
 */
export function maybeCompress(payload: Buffer, threshold: number): { bytes: Buffer; compressed: boolean } {
  if (payload.byteLength < threshold) return { bytes: payload, compressed: false };
  const z = deflateRawSync(payload);
  return z.byteLength < payload.byteLength ? { bytes: z, compressed: true } : { bytes: payload, compressed: false };
}

export function decompress(bytes: Buffer): Buffer {
  return inflateRawSync(bytes);
}
