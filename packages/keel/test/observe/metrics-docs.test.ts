/** Runs every ```ts block of docs/metrics.md (see ../docs-examples.ts) and checks its metric table is complete. */
import { afterAll, describe, expect, it } from 'vitest';
import { docExamples } from '../docs-examples.ts';

const ex = docExamples('metrics.md', ['fastify', 'prom-client']);
afterAll(() => ex.cleanup());

describe('docs/metrics.md', () => {
  it('has examples to run', () => {
    expect(ex.blocks.length).toBeGreaterThanOrEqual(6);
  });

  it('lists every metric a full Metrics exports', async () => {
    const { Metrics } = await import('../../src/observe/metrics.ts');
    const m = new Metrics();
    try {
      const names = [...(await m.scrape()).body.matchAll(/^# TYPE (\S+)/gm)].map((x) => x[1] as string);
      expect(names.filter((n) => !ex.doc.includes(`| \`${n}\` |`))).toEqual([]);
    } finally {
      await m.close();
    }
  });

  ex.blocks.forEach((block, i) => {
    it(`runs example ${i + 1} (${ex.headingOf(block)})`, async () => {
      await ex.run(i);
    });
  });
});
