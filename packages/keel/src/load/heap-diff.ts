/**
 * Compares two V8 heap snapshots (the `.heapsnapshot` JSON) by object type: for each
 * constructor name (or `(string)`, `(array)`, `(closure)`… for V8's internal kinds) the
 * change in count and in self size. The types that grew most are a leak's first suspects.
 */
import { readFile } from 'node:fs/promises';

/** One type's growth between two snapshots. */
export interface TypeGrowth {
  type: string;
  countDelta: number;
  sizeDelta: number;
}

interface SnapshotJson {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Count and self size per type in one snapshot. */
export function summarizeSnapshot(json: SnapshotJson): Map<string, { count: number; size: number }> {
  const { node_fields: fields, node_types: types } = json.snapshot.meta;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const kinds = types[0];
  const out = new Map<string, { count: number; size: number }>();
  const nodes = json.nodes;
  for (let i = 0; i < nodes.length; i += width) {
    const kind = kinds[nodes[i + typeAt]!]!;
    const key = kind === 'object' || kind === 'native' ? json.strings[nodes[i + nameAt]!]! : `(${kind})`;
    const e = out.get(key);
    if (e) {
      e.count++;
      e.size += nodes[i + sizeAt]!;
    } else out.set(key, { count: 1, size: nodes[i + sizeAt]! });
  }
  return out;
}

/**
 * The `top` types that grew most (by self size) from snapshot file `before` to `after`.
 *
 * @example
 * ```ts
 * const grown = await diffHeapSnapshots('a.heapsnapshot', 'b.heapsnapshot');
 * // [{ type: '(string)', countDelta: 2000, sizeDelta: 2101248 }, …]
 * ```
 */
export async function diffHeapSnapshots(before: string, after: string, top = 10): Promise<TypeGrowth[]> {
  const [a, b] = await Promise.all(
    [before, after].map(async (f) => summarizeSnapshot(JSON.parse(await readFile(f, 'utf8')) as SnapshotJson)),
  );
  const rows: TypeGrowth[] = [];
  for (const [type, now] of b!) {
    const was = a!.get(type) ?? { count: 0, size: 0 };
    if (now.size > was.size || now.count > was.count)
      rows.push({ type, countDelta: now.count - was.count, sizeDelta: now.size - was.size });
  }
  return rows.sort((x, y) => y.sizeDelta - x.sizeDelta || y.countDelta - x.countDelta).slice(0, top);
}
