/** `keel/observe`: metrics, trace context, logs, health, load shedding. */

export type { BreakerStats, CacheStats } from './channel-metrics.ts';
export { ChannelMetrics } from './channel-metrics.ts';
export type { EventLoopMonitorOptions, EventLoopSample } from './event-loop.ts';
export { EventLoopMonitor } from './event-loop.ts';
export type {
  CheckResult,
  CheckStatus,
  HealthCheckFn,
  HealthCheckOptions,
  HealthOptions,
  HealthReport,
  HealthResponse,
  HealthStatus,
} from './health.ts';
export { Health, HealthCheckTimeoutError } from './health.ts';
export type { RouteStats } from './http-metrics.ts';
export { HttpMetrics } from './http-metrics.ts';
export type { CreateLoggerOptions, TraceLogFields } from './log.ts';
export { createLogger, requestLogger, traceMixin } from './log.ts';
export type { MetricsOptions, MetricsSnapshot } from './metrics.ts';
export { HTTP_BUCKETS, Metrics } from './metrics.ts';
export type { OtelBridgeOptions } from './otel.ts';
export { OtelBridge, traced } from './otel.ts';
export { propagateTraceContext, traceInterceptor } from './outgoing.ts';
export type { LoadShedderOptions, PressureMessage, PressureReason, PressureSample, ShedMessage } from './pressure.ts';
export { LoadShedder } from './pressure.ts';
export { ProcessMetrics } from './process-metrics.ts';
export type { RollingOptions, WindowStats } from './rolling.ts';
export { RollingCounter, RollingHistogram } from './rolling.ts';
export type { CounterSeries, FamilyObject, FamilySpec, GaugeSeries, HistogramSeries, SeriesLimit } from './series-cap.ts';
export { CounterFamily, GaugeFamily, HistogramFamily, observe } from './series-cap.ts';
export type { HeaderSource, Traceparent, TracestateBounds, TracingOptions } from './trace.ts';
export { IdSource, parseTraceparent, parseTracestate, TraceContext, Tracing } from './trace.ts';
