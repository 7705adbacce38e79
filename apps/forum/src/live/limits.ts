/** The live hub's limits, their defaults, and their validation (once, at construction). */

/** Limits of the live hub; `config.live` carries them (see config.ts for the env names). */
export interface LiveLimits {
  /** Heartbeat interval; a peer that answers no ping within one interval is dropped. Default 30,000 ms. */
  heartbeatMs: number;
  /** Open sockets on this instance. Default 10,000. */
  maxConnections: number;
  /** Topic rooms plus channels per socket. Default 50. */
  maxSubscriptions: number;
  /** Send-buffer bound per socket; above it the peer is a slow consumer (close 4000). Default 1 MiB. */
  maxBufferedBytes: number;
  /** Largest client frame; ws closes with 1009 above it. Default 4 KiB. */
  maxPayload: number;
  /** Bad messages a socket may send before it is closed (1007 or 1008). Default 5. */
  maxBadMessages: number;
  /** Presence broadcasts are coalesced per room over this window (0: at once). Default 100 ms. */
  presenceMs: number;
  /** Time a closing socket gets to finish the close handshake before it is terminated. Default 1,000 ms. */
  closeGraceMs: number;
  /**
   * With a fan-out: how often this instance re-announces its rooms' counts to the others. A count
   * not re-announced for three intervals (a crashed instance's) stops counting. Default 5,000 ms.
   */
  presenceRefreshMs: number;
  /** With a fan-out: other instances' (topic, instance) counts held at most. Default 100,000. */
  maxRemotePresence: number;
  /**
   * Messages and private deliveries a socket may have waiting behind a session or topic lookup
   * that answers asynchronously (PostgreSQL); past it the socket is closed with 1008. Default 64.
   */
  maxPending: number;
}

/**
 * @example
 * ```ts
 * const hub = new LiveHub({ ...LIVE_DEFAULTS, heartbeatMs: 10_000, authenticate });
 * ```
 */
export const LIVE_DEFAULTS: Readonly<LiveLimits> = Object.freeze({
  heartbeatMs: 30_000,
  maxConnections: 10_000,
  maxSubscriptions: 50,
  maxBufferedBytes: 1024 * 1024,
  maxPayload: 4096,
  maxBadMessages: 5,
  presenceMs: 100,
  closeGraceMs: 1_000,
  presenceRefreshMs: 5_000,
  maxRemotePresence: 100_000,
  maxPending: 64,
});

const MIN: Record<keyof LiveLimits, number> = {
  heartbeatMs: 1,
  maxConnections: 1,
  maxSubscriptions: 1,
  maxBufferedBytes: 1,
  maxPayload: 64,
  maxBadMessages: 1,
  presenceMs: 0,
  closeGraceMs: 0,
  presenceRefreshMs: 100,
  maxRemotePresence: 1,
  maxPending: 1,
};

/** The limits with defaults filled in; throws a TypeError naming a bad option. */
export function liveLimits(options: Partial<LiveLimits>): Readonly<LiveLimits> {
  const out = { ...LIVE_DEFAULTS };
  for (const name of Object.keys(MIN) as (keyof LiveLimits)[]) {
    const value = options[name];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN[name])
      throw new TypeError(`live: LiveHub option "${name}" must be an integer >= ${MIN[name]} (got ${String(value)})`);
    out[name] = value;
  }
  return Object.freeze(out);
}
