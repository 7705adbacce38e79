import { setImmediate as tick } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { Metrics } from '../../src/observe/metrics.ts';
import { FakeClock } from '../../src/testing/fake-clock.ts';

const open: Metrics[] = [];
function metrics(clock = new FakeClock()): Metrics {
  const m = new Metrics({ channels: false, scrapeCacheMs: 0, clock });
  open.push(m);
  return m;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((m) => m.close()));
});

function sample(body: string, line: string): number | undefined {
  const found = body.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

/** Allocates until V8 has run at least one scavenge, then lets the GC observer deliver. */
async function collectGarbage(m: Metrics): Promise<void> {
  let keep: unknown[] = [];
  for (let round = 0; round < 200 && (m.snapshot().process.gcPauseMs10s ?? 0) === 0; round++) {
    for (let i = 0; i < 20_000; i++) keep.push({ i, s: `x${i}` });
    keep = [];
    await tick();
  }
}

describe('ProcessMetrics', () => {
  it('exports heap, RSS and the heap limit in bytes', async () => {
    const { body } = await metrics().scrape();
    const used = sample(body, 'keel_process_heap_used_bytes') ?? 0;
    expect(used).toBeGreaterThan(1_000_000);
    expect(sample(body, 'keel_process_heap_total_bytes')).toBeGreaterThanOrEqual(used);
    expect(sample(body, 'keel_process_heap_limit_bytes')).toBeGreaterThan(used);
    expect(sample(body, 'keel_process_resident_memory_bytes')).toBeGreaterThan(used);
  });

  it('exports event-loop delay and utilisation from the monitor window', async () => {
    const m = metrics();
    const { body } = await m.scrape();
    for (const name of ['p50', 'p99', 'max']) expect(sample(body, `keel_event_loop_delay_${name}_seconds`)).toBeGreaterThanOrEqual(0);
    const elu = sample(body, 'keel_event_loop_utilization_ratio') ?? -1;
    expect(elu).toBeGreaterThanOrEqual(0);
    expect(elu).toBeLessThanOrEqual(1);
  });

  it('records GC pauses by kind and sums the last 10 s for the snapshot', async () => {
    const clock = new FakeClock();
    const m = metrics(clock);
    await collectGarbage(m);
    expect(m.snapshot().process.gcPauseMs10s).toBeGreaterThan(0);
    const { body } = await m.scrape();
    expect(sample(body, 'keel_gc_pause_seconds_count{kind="minor"}')).toBeGreaterThan(0);
    clock.advance(11_000);
    expect(m.snapshot().process.gcPauseMs10s).toBe(0);
  });

  it('counts active resources by type, and in total', async () => {
    const m = metrics();
    const timer = setTimeout(() => {}, 10_000);
    try {
      const { body } = await m.scrape();
      expect(sample(body, 'keel_process_active_resources{type="Timeout"}')).toBeGreaterThanOrEqual(1);
      expect(sample(body, 'keel_process_active_handles')).toBe(process.getActiveResourcesInfo().length);
    } finally {
      clearTimeout(timer);
    }
  });

  it('exports CPU seconds by mode, growing with work', async () => {
    const m = metrics();
    const before = sample((await m.scrape()).body, 'keel_process_cpu_seconds_total{mode="user"}') ?? 0;
    const end = performance.now() + 30;
    while (performance.now() < end) {
      // burn CPU
    }
    const after = sample((await m.scrape()).body, 'keel_process_cpu_seconds_total{mode="user"}') ?? 0;
    expect(after).toBeGreaterThan(before);
    expect(sample((await m.scrape()).body, 'keel_process_cpu_seconds_total{mode="system"}')).toBeGreaterThanOrEqual(0);
  });

  it('exports no process metrics when processMetrics is off', async () => {
    const m = new Metrics({ processMetrics: false, channels: false });
    open.push(m);
    const { body } = await m.scrape();
    expect(body).not.toContain('keel_process_');
    expect(body).not.toContain('keel_gc_');
    expect(m.snapshot().process.gcPauseMs10s).toBeUndefined();
  });
});
