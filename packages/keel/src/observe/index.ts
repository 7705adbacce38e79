/** `keel/observe`: metrics, trace context, logs, health, load shedding. */
export type { EventLoopMonitorOptions, EventLoopSample } from './event-loop.ts';
export { EventLoopMonitor } from './event-loop.ts';
