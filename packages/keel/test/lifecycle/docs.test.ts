/** Runs every ```ts block of docs/lifecycle.md (see ../docs-examples.ts). */
import { afterAll, describe, expect, it } from 'vitest';
import { docExamples } from '../docs-examples.ts';

const ex = docExamples('lifecycle.md', ['fastify', 'express', 'undici']);
afterAll(() => ex.cleanup());

describe('docs/lifecycle.md', () => {
  it('has examples to run', () => {
    expect(ex.blocks.length).toBeGreaterThanOrEqual(3);
  });

  it('links the observe page', () => {
    expect(ex.doc).toContain('(./observe.md)');
  });

  ex.blocks.forEach((block, i) => {
    it(`runs example ${i + 1} (${ex.headingOf(block)})`, async () => {
      await ex.run(i);
    });
  });
});
