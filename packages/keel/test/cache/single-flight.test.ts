import { describe, expect, it } from 'vitest';
import { Flight, FlightMap } from '../../src/cache/single-flight.ts';

describe('FlightMap', () => {
  it('detaches flights by key and by tag, so later callers start anew', () => {
    const m = new FlightMap();
    const a = new Flight(['t1'], undefined);
    const b = new Flight(['t2'], undefined);
    m.set('a', a);
    m.set('b', b);
    m.detachTags(['t1']);
    expect(a.detached).toBe(true);
    expect(m.get('a')).toBeUndefined();
    expect(m.get('b')).toBe(b);
    m.detachKey('b');
    expect(b.detached).toBe(true);
    expect(m.size).toBe(0);
  });

  it('settles only the current flight of a key', () => {
    const m = new FlightMap();
    const old = new Flight([], undefined);
    const current = new Flight([], undefined);
    m.set('k', current);
    m.settle('k', old);
    expect(m.get('k')).toBe(current);
  });

  it('aborts and kills every flight on detachAll with a reason', () => {
    const m = new FlightMap();
    const f = new Flight([], undefined);
    const signal = f.signal;
    let killed: unknown;
    f.kill = (r) => {
      killed = r;
    };
    m.set('k', f);
    m.detachAll('closing');
    expect(signal.aborted).toBe(true);
    expect(killed).toBe('closing');
  });
});
