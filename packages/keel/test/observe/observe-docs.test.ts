/** Runs every ```ts block of docs/observe.md (see ../docs-examples.ts). */
import { afterAll, describe, expect, it } from 'vitest';
import { docExamples } from '../docs-examples.ts';

const ex = docExamples('observe.md', ['fastify', 'express', 'undici']);
afterAll(() => ex.cleanup());

describe('docs/observe.md', () => {
  it('has examples to run', () => {
    expect(ex.blocks.length).toBeGreaterThanOrEqual(8);
  });

  it('links the metrics and lifecycle pages', () => {
    expect(ex.doc).toContain('(./metrics.md)');
    expect(ex.doc).toContain('(./lifecycle.md)');
  });

  ex.blocks.forEach((block, i) => {
    it(`runs example ${i + 1} (${ex.headingOf(block)})`, async () => {
      await ex.run(i);
    });
  });
});
