export type { Resource, ScopeOptions } from './scope.ts';
export { Scope, ScopeClosedError } from './scope.ts';
