import { describe, expect, it } from 'vitest';
import { byteSize, decompress, jsonSerializer, maybeCompress, toBuffer } from '../../src/cache/serializer.ts';

describe('serializer', () => {
  it('round-trips JSON', () => {
    const bytes = toBuffer(jsonSerializer.serialize({ a: [1, 'é'] }));
    expect(jsonSerializer.deserialize(bytes)).toEqual({ a: [1, 'é'] });
  });

  it('measures strings as UTF-8 bytes', () => {
    expect(byteSize('é')).toBe(2);
    expect(byteSize(new Uint8Array(3))).toBe(3);
  });

  it('compresses only at or above the threshold, and only when it saves space', () => {
    const big = Buffer.from('ab'.repeat(5_000));
    expect(maybeCompress(big, 20_000).compressed).toBe(false);
    const z = maybeCompress(big, 1_000);
    expect(z.compressed).toBe(true);
    expect(decompress(z.bytes).equals(big)).toBe(true);
    const random = Buffer.from(Array.from({ length: 2_000 }, (_, i) => (i * 7919) % 251));
    expect(maybeCompress(random, 10).bytes.byteLength).toBeLessThanOrEqual(random.byteLength);
  });
});
