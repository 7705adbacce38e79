import { badRequest } from './errors.ts';

/** Opaque keyset cursors: base64url JSON of the last row's sort key. */
export function encodeCursor(key: readonly (number | string)[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/**
 * Decodes a cursor made by {@link encodeCursor} whose parts match `shape` ('n' number, 's'
 * string); anything else is a 400 naming `cursor`, never a 500 or a silent first page.
 */
export function decodeCursor(cursor: string | undefined, shape: string): (number | string)[] | null {
  if (cursor === undefined) return null;
  let parts: unknown;
  try {
    parts = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw badRequest('cursor', 'cursor is not valid');
  }
  const ok =
    Array.isArray(parts) &&
    parts.length === shape.length &&
    parts.every((p, i) => (shape[i] === 'n' ? typeof p === 'number' && Number.isFinite(p) : typeof p === 'string' && p.length <= 16));
  if (!ok) throw badRequest('cursor', 'cursor is not valid');
  return parts as (number | string)[];
}

/** `{ items, nextCursor }`: a next cursor only when the page came back full. */
export function page<T>(items: T[], limit: number, keyOf: (last: T) => (number | string)[]): { items: T[]; nextCursor: string | null } {
  const last = items[items.length - 1];
  return { items, nextCursor: items.length === limit && last !== undefined ? encodeCursor(keyOf(last)) : null };
}
