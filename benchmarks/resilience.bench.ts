/**
 * Resilience policy overhead: every call succeeds at once, calls run one after another, so
 * what is measured is the policy's own cost per call. Peers run in the same process.
 * `npm run bench -- resilience [--quick]`
 */
import {
  ConsecutiveBreaker,
  circuitBreaker as cbCockatiel,
  handleAll,
  retry as retryCockatiel,
  TimeoutStrategy,
  timeout as timeoutCockatiel,
  wrap,
} from 'cockatiel';
import { circuitBreaker, pipeline, retry, timeout } from 'keel/resilience';
import { measureAsync, report } from './lib/measure.ts';

// opossum ships no types and @types/opossum is not installed; this is the slice we use.
type OpossumBreaker = { fire(): Promise<unknown>; shutdown(): void };
const { default: CircuitBreakerOpossum } = (await import('opossum' as string)) as {
  default: new (fn: () => Promise<unknown>, options: Record<string, unknown>) => OpossumBreaker;
};

const quick = process.argv.includes('--quick');
const opts = quick ? { iterations: 50_000, rounds: 3, warmup: 50_000 } : { iterations: 200_000, rounds: 5, warmup: 200_000 };

const work = async () => 1;

const keelRetry = retry({ maxAttempts: 3 });
const keelBreaker = circuitBreaker({ halfOpenAfterMs: 10_000 });
const keelPipeline = pipeline(timeout(1000), retry({ maxAttempts: 3 }), circuitBreaker({ halfOpenAfterMs: 10_000 }));

const cRetry = retryCockatiel(handleAll, { maxAttempts: 3 });
const cBreaker = cbCockatiel(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) });
const cPipeline = wrap(
  timeoutCockatiel(1000, TimeoutStrategy.Cooperative),
  retryCockatiel(handleAll, { maxAttempts: 3 }),
  cbCockatiel(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) }),
);
const oBreaker = new CircuitBreakerOpossum(work, { timeout: 1000, resetTimeout: 10_000 });

const scenarios: [string, () => unknown][] = [
  ['bare', () => work()],
  ['keel_retry', () => keelRetry.execute(work)],
  ['keel_breaker', () => keelBreaker.execute(work)],
  ['keel_pipeline', () => keelPipeline.execute(work)],
  ['cockatiel_retry', () => cRetry.execute(work)],
  ['cockatiel_breaker', () => cBreaker.execute(work)],
  ['cockatiel_pipeline', () => cPipeline.execute(work)],
  ['opossum_breaker', () => oBreaker.fire()],
];
// Two passes over every scenario, keeping each one's better pass: the first scenario timed in a
// fresh process runs measurably slower (JIT and GC still settling), whichever it is.
const figures: Record<string, number> = {};
for (let pass = 0; pass < 2; pass++) {
  for (const [name, fn] of scenarios) {
    globalThis.gc?.();
    const m = await measureAsync(fn, opts);
    figures[name] = Math.max(figures[name] ?? 0, m.opsPerSec);
  }
}
oBreaker.shutdown();

const r = (a: string, b: string) => Math.round(((figures[a] as number) / (figures[b] as number)) * 100) / 100;
report('resilience', figures, {
  ratios: {
    pipeline_vs_cockatiel: r('keel_pipeline', 'cockatiel_pipeline'),
    retry_vs_cockatiel: r('keel_retry', 'cockatiel_retry'),
    breaker_vs_cockatiel: r('keel_breaker', 'cockatiel_breaker'),
    breaker_vs_opossum: r('keel_breaker', 'opossum_breaker'),
  },
});
