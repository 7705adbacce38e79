export { FakeClock, flushMicrotasks } from './fake-clock.ts';
