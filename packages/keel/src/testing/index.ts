export { deferred } from './deferred.ts';
export { FakeClock, flushMicrotasks } from './fake-clock.ts';
export { seededRandom } from './random.ts';
