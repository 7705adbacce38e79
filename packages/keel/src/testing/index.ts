export { FakeClock, flushMicrotasks } from './fake-clock.ts';
export { seededRandom } from './random.ts';
