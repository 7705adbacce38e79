/** Runs every ```ts block of docs/resilience.md (see ../docs-examples.ts). */
import { afterAll, describe, expect, it } from 'vitest';
import { docExamples } from '../docs-examples.ts';

const ex = docExamples('resilience.md');
afterAll(() => ex.cleanup());

describe('docs/resilience.md', () => {
  it('has examples to run', () => {
    expect(ex.blocks.length).toBeGreaterThanOrEqual(8);
  });

  ex.blocks.forEach((block, i) => {
    it(`runs example ${i + 1} (${ex.headingOf(block)})`, async () => {
      await ex.run(i);
    });
  });
});
