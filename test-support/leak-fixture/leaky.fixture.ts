import { it } from 'vitest';

let keep: NodeJS.Timeout | undefined;
it('leaves an unref-ed interval running', () => {
  keep = setInterval(() => {}, 1_000);
  keep.unref();
});
