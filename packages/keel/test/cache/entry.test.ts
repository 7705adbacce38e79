import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeHeader, decodeRecord, encodeRecord, payloadOf } from '../../src/cache/entry.ts';

describe('L2 records', () => {
  const meta = { kind: 'v' as const, born: 1_700_000_000_000.123, expiresAt: 1_700_000_060_000, graceUntil: 1_700_000_120_000 };

  it('round-trips metadata and payload, compressed or not', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3_000 }),
        fc.array(fc.stringMatching(/^[a-z0-9:]{1,12}$/), { maxLength: 4 }),
        fc.integer({ min: 0, max: 4_000 }),
        (payload, tags, threshold) => {
          const rec = encodeRecord({ ...meta, tags, etag: '"e"', contentType: 'application/json' }, Buffer.from(payload), threshold);
          const back = decodeRecord(rec);
          expect(back?.born).toBe(meta.born);
          expect(back?.tags).toEqual(tags);
          expect(back?.etag).toBe('"e"');
          expect(Buffer.compare(back?.payload ?? Buffer.alloc(1), Buffer.from(payload))).toBe(0);
        },
      ),
    );
  });

  it('compresses a large compressible payload', () => {
    const rec = encodeRecord({ ...meta, tags: [], etag: '', contentType: '' }, Buffer.from('a'.repeat(10_000)), 1_000);
    expect(rec.byteLength).toBeLessThan(1_000);
  });

  it('treats malformed records as misses', () => {
    expect(decodeRecord(Buffer.from('hello'))).toBeUndefined();
    expect(decodeRecord(Buffer.from('k1|v|x|1|2|||\n{}'))).toBeUndefined();
    expect(decodeRecord(Buffer.from('k2|v|1|1|2|||\n{}'))).toBeUndefined();
    expect(decodeRecord(Buffer.from('k1|vz|1|1|2|||\nnot deflate'))).toBeUndefined();
  });
});

describe('L2 records with non-ASCII tags', () => {
  it('round-trips UTF-8 tags', () => {
    const rec = encodeRecord(
      { kind: 'v', born: 1, expiresAt: 2, graceUntil: 3, tags: ['forum:café', 'tópico:7'], etag: '', contentType: '' },
      Buffer.from('{}'),
      4096,
    );
    expect(decodeRecord(rec)?.tags).toEqual(['forum:café', 'tópico:7']);
  });
});

describe('L2 record headers', () => {
  const meta = { kind: 'v' as const, born: 5, expiresAt: 6, graceUntil: 7, tags: ['t'], etag: '', contentType: '' };

  it('gives the offset of an uncompressed payload, which starts right after the header line', () => {
    const rec = encodeRecord(meta, Buffer.from('{"a":1}'), 4096);
    const h = decodeHeader(rec);
    expect(h?.compressed).toBe(false);
    expect(rec.toString('utf8', h?.offset)).toBe('{"a":1}');
  });

  it('flags a compressed payload, and payloadOf inflates it', () => {
    const rec = encodeRecord(meta, Buffer.from('b'.repeat(5_000)), 100);
    const h = decodeHeader(rec);
    expect(h?.compressed).toBe(true);
    expect(h && payloadOf(rec, h)?.toString()).toBe('b'.repeat(5_000));
  });

  it('payloadOf is undefined for a corrupt compressed payload', () => {
    const rec = Buffer.from('k1|vz|1|1|2|||\nnot deflate');
    const h = decodeHeader(rec);
    expect(h && payloadOf(rec, h)).toBeUndefined();
  });
});
