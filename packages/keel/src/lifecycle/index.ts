export type { Resource, ScopeOptions } from './scope.ts';
export { Scope, ScopeClosedError } from './scope.ts';
export type { GracefulShutdownOptions, ShutdownLogger, ShutdownState } from './shutdown.ts';
export { GracefulShutdown } from './shutdown.ts';
