/**
 * Outgoing trace propagation: every HTTP call made while a request is handled carries that
 * request's `traceparent` (and `tracestate`), so the next service joins the same trace.
 *
 * Two ways in, for two kinds of client:
 * - {@link propagateTraceContext} subscribes to undici's `undici:request:create` diagnostics
 *   channel. It covers the `undici` package and Node's global `fetch` (which bundles undici
 *   and publishes on the same channel names), with no change at the call sites.
 * - {@link traceInterceptor} is an undici dispatcher interceptor for code that builds its own
 *   `Agent`/`Pool`: `new Agent().compose(traceInterceptor(tracing))`.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Dispatcher } from 'undici';
import type { Tracing } from './trace.ts';

const CREATE = 'undici:request:create';

interface UndiciRequestLike {
  headers: unknown;
  addHeader(name: string, value: string): unknown;
}

function hasHeader(headers: unknown, name: string): boolean {
  if (typeof headers === 'string') return headers.toLowerCase().includes(`${name}:`);
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i++) {
      const h = headers[i];
      // undici 7 keeps [name, value] pairs; older versions a flat [name, value, …] list.
      const key = Array.isArray(h) ? h[0] : i % 2 === 0 ? h : undefined;
      if (typeof key === 'string' && key.toLowerCase() === name) return true;
    }
  }
  return false;
}

/**
 * Adds `traceparent`/`tracestate` to every undici and `fetch` request created inside a
 * traced request. A request that already carries a `traceparent` (set by the caller or an
 * OpenTelemetry instrumentation) is left alone. Returns a handle whose `close()` unsubscribes.
 *
 * @example
 * ```ts
 * import { Tracing, propagateTraceContext } from 'keel/observe';
 * const tracing = new Tracing();
 * const propagation = propagateTraceContext(tracing);
 * // … fetch(url) inside tracing.run(ctx, …) now sends traceparent
 * propagation.close();
 * ```
 */
export function propagateTraceContext(tracing: Tracing): { close(): void; [Symbol.dispose](): void } {
  if (typeof tracing?.current !== 'function') throw new TypeError('keel: propagateTraceContext needs a Tracing');
  const onCreate = (message: unknown): void => {
    const ctx = tracing.current();
    if (ctx === undefined) return;
    const request = (message as { request?: UndiciRequestLike }).request;
    if (!request || typeof request.addHeader !== 'function' || hasHeader(request.headers, 'traceparent')) return;
    request.addHeader('traceparent', ctx.traceparent());
    if (ctx.traceState !== undefined) request.addHeader('tracestate', ctx.traceState);
  };
  subscribe(CREATE, onCreate);
  let open = true;
  const close = (): void => {
    if (!open) return;
    open = false;
    unsubscribe(CREATE, onCreate);
  };
  return { close, [Symbol.dispose]: close };
}

type DispatchHeaders = Dispatcher.DispatchOptions['headers'];

function withTraceHeaders(headers: DispatchHeaders, traceparent: string, tracestate: string | undefined): DispatchHeaders {
  if (headers == null) {
    return tracestate === undefined ? { traceparent } : { traceparent, tracestate };
  }
  if (Array.isArray(headers)) {
    if (hasHeader(headers, 'traceparent')) return headers;
    const out = [...(headers as string[]), 'traceparent', traceparent];
    if (tracestate !== undefined) out.push('tracestate', tracestate);
    return out;
  }
  const entries: [string, string | string[] | undefined][] =
    typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function'
      ? [...(headers as Iterable<[string, string | string[] | undefined]>)]
      : Object.entries(headers as Record<string, string | string[] | undefined>);
  const out: Record<string, string | string[] | undefined> = {};
  for (const [k, v] of entries) {
    if (k.toLowerCase() === 'traceparent') return headers;
    out[k] = v;
  }
  out.traceparent = traceparent;
  if (tracestate !== undefined) out.tracestate = tracestate;
  return out;
}

/**
 * An undici interceptor that adds the current request's `traceparent`/`tracestate` to each
 * dispatched request (unless it already has a `traceparent`).
 *
 * @example
 * ```ts
 * import { Agent } from 'undici';
 * import { Tracing, traceInterceptor } from 'keel/observe';
 * const tracing = new Tracing();
 * const agent = new Agent().compose(traceInterceptor(tracing));
 * await agent.close();
 * ```
 */
export function traceInterceptor(tracing: Tracing): Dispatcher.DispatcherComposeInterceptor {
  if (typeof tracing?.current !== 'function') throw new TypeError('keel: traceInterceptor needs a Tracing');
  return (dispatch) => (options, handler) => {
    const ctx = tracing.current();
    if (ctx === undefined) return dispatch(options, handler);
    return dispatch({ ...options, headers: withTraceHeaders(options.headers, ctx.traceparent(), ctx.traceState) }, handler);
  };
}
