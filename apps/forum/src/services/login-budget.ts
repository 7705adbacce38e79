export interface LoginBudgetOptions {
  /** Failed logins allowed per window (the bucket's size). */
  limit: number;
  /** Time for an empty budget to refill completely, ms. */
  windowMs: number;
  /** Accounts tracked at most; the least recently used is forgotten beyond it. */
  maxKeys: number;
  now: () => number;
}

/**
 * The failed-login budget of each account: a token bucket of `limit` tokens refilled over
 * `windowMs`. A login reserves a token *before* the password is checked and gives it back when
 * the password was right, so only failures spend the budget, an empty budget refuses even the
 * right password (a 200 there would tell a guesser which guess was right), and concurrent
 * guesses cannot spend more than the budget holds. keel's RateLimit has no way to give a token
 * back, hence this small bucket.
 *
 * @example
 * ```ts
 * const budget = new LoginBudget({ limit: 5, windowMs: 15 * 60_000, maxKeys: 50_000, now: Date.now });
 * const waitMs = budget.reserve('alice');
 * if (waitMs > 0) throw tooManyRequests(waitMs / 1000);
 * if (passwordOk) budget.release('alice');
 * ```
 */
export class LoginBudget {
  readonly #o: LoginBudgetOptions;
  // Insertion order is recency order: a touched key is re-inserted at the end.
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(options: LoginBudgetOptions) {
    this.#o = options;
  }

  /** Takes one attempt from `key`'s budget: 0 when granted, else the ms until one is free. */
  reserve(key: string): number {
    const { limit, windowMs } = this.#o;
    const now = this.#o.now();
    const b = this.#buckets.get(key);
    const tokens = b ? Math.min(limit, b.tokens + ((now - b.at) * limit) / windowMs) : limit;
    if (tokens < 1) {
      this.#put(key, { tokens, at: now });
      return Math.ceil(((1 - tokens) * windowMs) / limit);
    }
    this.#put(key, { tokens: tokens - 1, at: now });
    return 0;
  }

  /** Gives back the attempt `reserve` took: the login succeeded. */
  release(key: string): void {
    const b = this.#buckets.get(key);
    if (!b) return;
    b.tokens += 1;
    // A full budget is the same as none kept: successful logins leave nothing behind.
    if (b.tokens >= this.#o.limit) this.#buckets.delete(key);
  }

  #put(key: string, bucket: { tokens: number; at: number }): void {
    this.#buckets.delete(key);
    if (this.#buckets.size >= this.#o.maxKeys) this.#buckets.delete(this.#buckets.keys().next().value as string);
    this.#buckets.set(key, bucket);
  }
}
