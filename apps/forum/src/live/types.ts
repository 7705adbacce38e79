/** The shapes the live hub takes and gives: its socket, users, fan-out, options and stats. */
import type { Clock } from 'keel/clock';
import type { LiveLimits } from './limits.ts';

/** The part of a `ws` WebSocket the hub uses. */
export interface LiveSocket {
  readonly readyState: number;
  /** Bytes queued and not yet taken by the kernel (ws: its sender queue plus the socket's writable length). */
  readonly bufferedAmount: number;
  send(data: string): void;
  ping(): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: 'message', fn: (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => void): unknown;
  on(event: 'pong' | 'close', fn: () => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
}

export interface LiveUser {
  id: number;
  username: string;
}

/**
 * Cross-instance delivery (see redis-fanout.ts); `target` is `t<topicId>`, `u<userId>`, or `p`
 * for presence announcements (presence.ts).
 */
export interface Fanout {
  publish(target: string, payload: string): void;
  stats(): Record<string, number>;
  /** Whether it can deliver now, for health checks. */
  state(): FanoutState;
  close(): Promise<void>;
}

/** Hands a message another instance published to this one's hub. */
export type FanoutDeliver = (target: string, payload: string, origin: string) => void;

/** `subscribed`: other instances' events reach this one; `publishing`: this one's reach them. */
export interface FanoutState {
  subscribed: boolean;
  publishing: boolean;
}

export interface LiveHubOptions extends Partial<LiveLimits> {
  /** Session lookup for `auth` messages, the `me` channel, and its re-check before each delivery on it, at each heartbeat and on `sessionEnded`. */
  authenticate: (token: string) => LiveUser | undefined | Promise<LiveUser | undefined>;
  /** Whether a topic may be subscribed. Default: every id. */
  topicExists?: (topicId: number) => boolean | Promise<boolean>;
  /**
   * Builds the fan-out. `deliver` hands another instance's message to the hub, with that
   * instance's id; the fan-out calls `subscribed` each time it (re)joins the channel, so the hub
   * can ask the others for their presence counts. Default: none (one instance).
   */
  fanout?: (deliver: FanoutDeliver, subscribed: () => void) => Fanout;
  /** Clock of the heartbeat, presence and close-grace timers. Default: the real clock. */
  clock?: Clock;
}

/** Counts for the dashboard and leak checks; all return to 0 when every client has gone. */
export interface LiveStats {
  connections: number;
  /** Topic rooms with at least one member. */
  rooms: number;
  /** Memberships in rooms and `me` channels. */
  subscriptions: number;
  /** Users with a socket on their `me` channel. */
  channels: number;
  /** Sockets told to close whose TCP connection has not ended yet. */
  closing: number;
  /** Totals since start. */
  slowConsumers: number;
  heartbeatTimeouts: number;
  fanout?: Record<string, number>;
  /** With a fan-out: other instances' counts held, those dropped at `maxRemotePresence`, and malformed announcements. */
  presence?: { remotePresence: number; presenceDropped: number; presenceBad: number };
}
