/**
 * The `ws` client, typed for the few calls the soak tester makes (the repo has no @types/ws,
 * and a local ambient `declare module 'ws'` could clash with another part's).
 */
import { createRequire } from 'node:module';

/** The subset of a `ws` WebSocket used here. */
export interface WsSocket {
  once(event: 'open' | 'close', fn: () => void): void;
  once(event: 'error', fn: (err: Error) => void): void;
  once(event: 'message', fn: (data: unknown) => void): void;
  on(event: 'message', fn: (data: unknown) => void): void;
  off(event: 'message', fn: (data: unknown) => void): void;
  send(data: string): void;
  close(): void;
  /** Destroys the socket at once, without the closing handshake. */
  terminate(): void;
}

/** The `ws` WebSocket constructor. */
export const WebSocket = createRequire(import.meta.url)('ws') as new (
  url: string,
  options?: { perMessageDeflate?: boolean; maxPayload?: number },
) => WsSocket;
