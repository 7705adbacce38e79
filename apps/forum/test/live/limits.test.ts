import { describe, expect, it } from 'vitest';
import { LIVE_DEFAULTS, liveLimits } from '../../src/live/limits.ts';

describe('liveLimits', () => {
  it('fills in the defaults', () => {
    expect(liveLimits({ heartbeatMs: 5_000 })).toEqual({ ...LIVE_DEFAULTS, heartbeatMs: 5_000 });
  });

  it('names the option and its bound in a TypeError', () => {
    expect(() => liveLimits({ maxPayload: 10 })).toThrow('live: LiveHub option "maxPayload" must be an integer >= 64 (got 10)');
    expect(() => liveLimits({ presenceMs: 1.5 })).toThrow(/"presenceMs"/);
    expect(() => liveLimits({ heartbeatMs: '1' as never })).toThrow(/"heartbeatMs"/);
  });
});
