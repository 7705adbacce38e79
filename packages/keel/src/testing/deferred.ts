/**
 * A promise with its `resolve` and `reject` handed out, for tests that settle something by hand
 * (a loader, a lookup over the network) at the moment they choose. `Promise.withResolvers` does
 * this from Node 22; Keel supports Node 20.
 *
 * @example
 * ```ts
 * const lookup = deferred<string>();
 * const pending = lookup.promise.then((v) => v.length);
 * lookup.resolve('four');
 * await pending; // 4
 * ```
 */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (reason: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
