/**
 * A keel soak sampler for a forum running in the test's own process: two full GCs, then
 * heapUsed and the live handle count (client and server together).
 */
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { HeapSampler } from 'keel/load';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Live handles of this process (the terminal's own excluded). */
export const handles = (): number => process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').length;

export const inProcessSampler: HeapSampler = {
  async sample() {
    gc();
    gc();
    return { heapUsed: process.memoryUsage().heapUsed, handles: handles() };
  },
  async snapshot(file) {
    writeHeapSnapshot(file);
  },
  async close() {},
};
