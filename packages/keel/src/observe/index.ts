/** `keel/observe`: metrics, trace context, logs, health, load shedding. */
export type { BreakerStats, CacheStats } from './channel-metrics.ts';
export { ChannelMetrics } from './channel-metrics.ts';
export type { EventLoopMonitorOptions, EventLoopSample } from './event-loop.ts';
export { EventLoopMonitor } from './event-loop.ts';
export type { RouteStats } from './http-metrics.ts';
export { HttpMetrics } from './http-metrics.ts';
export type { MetricsOptions, MetricsSnapshot } from './metrics.ts';
export { HTTP_BUCKETS, Metrics } from './metrics.ts';
export { ProcessMetrics } from './process-metrics.ts';
export type { RollingOptions, WindowStats } from './rolling.ts';
export { RollingCounter, RollingHistogram } from './rolling.ts';
export type { CounterSeries, FamilyObject, FamilySpec, GaugeSeries, HistogramSeries, SeriesLimit } from './series-cap.ts';
export { CounterFamily, GaugeFamily, HistogramFamily, observe } from './series-cap.ts';
