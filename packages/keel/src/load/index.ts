/**
 * `keel/load`: the load generator (`runLoad`), the soak tester (`runSoak`) and the TCP fault
 * proxy (`createFaultProxy`), the same code the `keel` CLI runs.
 */
export type { FaultProxy, FaultProxyOptions, Faults } from './chaos.ts';
export { createFaultProxy } from './chaos.ts';
export type { TypeGrowth } from './heap-diff.ts';
export { diffHeapSnapshots } from './heap-diff.ts';
export type { HeapSample, HeapSampler, HeapSamplerOptions } from './heap-sampler.ts';
export { heapAdminHandler, httpHeapSampler, inspectorHeapSampler } from './heap-sampler.ts';
export type { LatencySummary, WindowStats } from './histogram.ts';
export { renderHtmlReport } from './html-report.ts';
export type { ProgressStream } from './progress.ts';
export { createProgress } from './progress.ts';
export { formatJson, formatReport } from './report.ts';
export type { LoadOptions, LoadResult } from './runner.ts';
export { runLoad } from './runner.ts';
export type { PreparedRequest, RequestSource, Scenario, ScenarioRequest } from './scenario.ts';
export { loadScenario, scenarioSource } from './scenario.ts';
export type { Stage } from './schedule.ts';
export { parseDuration, parseStages, Schedule } from './schedule.ts';
export type { SoakAction, SoakFit, SoakOptions, SoakResult, SoakSample } from './soak.ts';
export { runSoak } from './soak.ts';
export type { HttpSoakAction, WsSoakAction } from './soak-actions.ts';
export type { LinearFit } from './stats.ts';
export { linearFit, parseBytes } from './stats.ts';
export type { Threshold, ThresholdInput, ThresholdResult } from './thresholds.ts';
export { checkThreshold, parseThreshold, ThresholdSet } from './thresholds.ts';
