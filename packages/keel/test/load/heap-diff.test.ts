import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { diffHeapSnapshots, summarizeSnapshot } from '../../src/load/heap-diff.ts';

class LeakedThing {
  payload = [1, 2, 3];
}

describe('diffHeapSnapshots', () => {
  it('names the constructor whose instances grew between two snapshots', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keel-heapdiff-'));
    const kept: LeakedThing[] = [];
    try {
      const a = writeHeapSnapshot(join(dir, 'a.heapsnapshot'));
      for (let i = 0; i < 5000; i++) kept.push(new LeakedThing());
      const b = writeHeapSnapshot(join(dir, 'b.heapsnapshot'));
      const grown = await diffHeapSnapshots(a, b, 20);
      const row = grown.find((g) => g.type === 'LeakedThing');
      expect(row?.countDelta).toBeGreaterThanOrEqual(5000);
      expect(grown.length).toBeLessThanOrEqual(20);
      expect(grown.indexOf(row!)).toBeLessThan(5);
    } finally {
      kept.length = 0;
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('summarizeSnapshot', () => {
  it('groups objects by name and internal kinds by kind', () => {
    const json = {
      snapshot: {
        meta: { node_fields: ['type', 'name', 'id', 'self_size'], node_types: [['hidden', 'object', 'string'] as string[]] as [string[]] },
      },
      nodes: [1, 0, 1, 32, 1, 0, 2, 32, 2, 1, 3, 20],
      strings: ['Topic', 'some text'],
    };
    const s = summarizeSnapshot(json);
    expect(s.get('Topic')).toEqual({ count: 2, size: 64 });
    expect(s.get('(string)')).toEqual({ count: 1, size: 20 });
  });
});
