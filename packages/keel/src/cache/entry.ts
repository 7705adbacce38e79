/**
 * A cached entry as held in L1, and its wire form in L2.
 *
 * L2 record: one header line, then the payload (compressed when flagged):
 *   `k1|<flags>|<born>|<expiresAt>|<graceUntil>|<tag,tag>|<etag>|<contentType>\n<payload>`
 * The header is plain text so the read script in Redis can check the tags' invalidation
 * stamps against `born` without a second round trip (see tiers/redis.ts).
 */
import { decompress, maybeCompress } from './serializer.ts';

/** One L1 entry (read on the slow path; hits only touch the promise it hangs off, see tiers/memory.ts). */
export class Entry {
  value: unknown;
  /** Bytes of the serialized value (the L1 byte bound counts these). */
  size: number;
  /** When the load that produced the value started (a tag stamp): invalidations after it win. */
  born: number;
  /** Logical expiry (epoch ms); after it the value is stale. */
  expiresAt: number;
  /** Stale values may be served until here (expiresAt + grace). */
  graceUntil: number;
  /** L1 serves it as a hit until here: min(expiresAt, L1 expiry, eager-refresh point). */
  refreshAt: number;
  tags: readonly string[];
  /** Consecutive failed refreshes (fail-safe backoff). */
  failures = 0;
  /** No refresh is attempted before this (epoch ms). */
  retryAt = 0;
  /** Eager refresh point (Infinity when off): past it a refresh reloads even if L2 has this same value. */
  eagerAt = Number.POSITIVE_INFINITY;

  constructor(
    value: unknown,
    size: number,
    born: number,
    expiresAt: number,
    graceUntil: number,
    refreshAt: number,
    tags: readonly string[],
  ) {
    this.value = value;
    this.size = size;
    this.born = born;
    this.expiresAt = expiresAt;
    this.graceUntil = graceUntil;
    this.refreshAt = refreshAt;
    this.tags = tags;
  }
}

export interface RecordMeta {
  /** `'v'`: a serialized value; `'b'`: an HTTP body stored as is. */
  kind: 'v' | 'b';
  born: number;
  expiresAt: number;
  graceUntil: number;
  tags: readonly string[];
  etag: string;
  contentType: string;
}

export interface StoredRecord extends RecordMeta {
  payload: Buffer;
}

const NL = 10;
const NON_ASCII = /[\u0080-\u00ff]/;

export function encodeRecord(meta: RecordMeta, payload: Buffer, compressThreshold: number): Buffer {
  const { bytes, compressed } = maybeCompress(payload, compressThreshold);
  const header = `k1|${meta.kind}${compressed ? 'z' : ''}|${meta.born}|${meta.expiresAt}|${meta.graceUntil}|${meta.tags.join(',')}|${meta.etag}|${meta.contentType}\n`;
  const head = Buffer.from(header, 'utf8');
  return Buffer.concat([head, bytes], head.byteLength + bytes.byteLength);
}

/** A record's header and where its payload starts (the payload is not copied or decompressed). */
export interface RecordHeader extends RecordMeta {
  compressed: boolean;
  /** Byte offset of the payload in the record. */
  offset: number;
}

/** Parses a record's header; `undefined` for anything malformed (a foreign or corrupted key is a miss). */
export function decodeHeader(buf: Buffer): RecordHeader | undefined {
  const nl = buf.indexOf(NL);
  if (nl < 0) return undefined;
  // latin1 decodes to a one-byte string without UTF-8 validation (the header is ASCII but
  // for tags); tags with non-ASCII bytes are re-decoded below.
  const f = buf.toString('latin1', 0, nl).split('|');
  if (f.length !== 8 || f[0] !== 'k1') return undefined;
  const flags = f[1] as string;
  const kind = flags[0];
  if (kind !== 'v' && kind !== 'b') return undefined;
  const born = Number(f[2]);
  const expiresAt = Number(f[3]);
  const graceUntil = Number(f[4]);
  if (!Number.isFinite(born) || !Number.isFinite(expiresAt) || !Number.isFinite(graceUntil)) return undefined;
  let tagField = f[5] as string;
  if (tagField !== '' && NON_ASCII.test(tagField)) tagField = Buffer.from(tagField, 'latin1').toString('utf8');
  const tags = tagField === '' ? [] : tagField.split(',');
  const compressed = flags.length > 1 && flags.includes('z');
  return { kind, born, expiresAt, graceUntil, tags, etag: f[6] as string, contentType: f[7] as string, compressed, offset: nl + 1 };
}

/** The payload of a record with this header (decompressed when flagged), or undefined if corrupt. */
export function payloadOf(buf: Buffer, h: RecordHeader): Buffer | undefined {
  const payload = buf.subarray(h.offset);
  if (!h.compressed) return payload;
  try {
    return decompress(payload);
  } catch {
    return undefined;
  }
}

/** Parses a record; `undefined` for anything malformed (a foreign or corrupted key is a miss). */
export function decodeRecord(buf: Buffer): StoredRecord | undefined {
  const h = decodeHeader(buf);
  if (h === undefined) return undefined;
  const payload = payloadOf(buf, h);
  if (payload === undefined) return undefined;
  const { kind, born, expiresAt, graceUntil, tags, etag, contentType } = h;
  return { kind, born, expiresAt, graceUntil, tags, etag, contentType, payload };
}
