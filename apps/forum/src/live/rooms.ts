/**
 * Who listens where: topic rooms and per-user private channels, each a set of members. Empty
 * sets are deleted at once, so the maps hold only live rooms and their size is the room count.
 */
export class Rooms<M> {
  readonly #topics = new Map<number, Set<M>>();
  readonly #users = new Map<number, Set<M>>();
  #subscriptions = 0;

  /** Topic rooms with at least one member. */
  get topicCount(): number {
    return this.#topics.size;
  }

  /** Users with at least one socket on their `me` channel. */
  get userCount(): number {
    return this.#users.size;
  }

  /** Memberships across all rooms and channels. */
  get subscriptions(): number {
    return this.#subscriptions;
  }

  topic(topicId: number): ReadonlySet<M> | undefined {
    return this.#topics.get(topicId);
  }

  /** Every topic room with its members. */
  topics(): IterableIterator<[number, ReadonlySet<M>]> {
    return this.#topics.entries();
  }

  user(userId: number): ReadonlySet<M> | undefined {
    return this.#users.get(userId);
  }

  /** Members of `t<topicId>` or `u<userId>` (the fan-out's target names). */
  target(target: string): ReadonlySet<M> | undefined {
    const id = Number(target.slice(1));
    if (target[0] === 't') return this.#topics.get(id);
    if (target[0] === 'u') return this.#users.get(id);
    return undefined;
  }

  joinTopic(topicId: number, m: M): void {
    this.#join(this.#topics, topicId, m);
  }

  leaveTopic(topicId: number, m: M): void {
    this.#leave(this.#topics, topicId, m);
  }

  joinUser(userId: number, m: M): void {
    this.#join(this.#users, userId, m);
  }

  leaveUser(userId: number, m: M): void {
    this.#leave(this.#users, userId, m);
  }

  #join(map: Map<number, Set<M>>, id: number, m: M): void {
    let set = map.get(id);
    if (!set) {
      set = new Set();
      map.set(id, set);
    }
    if (set.has(m)) return;
    set.add(m);
    this.#subscriptions++;
  }

  #leave(map: Map<number, Set<M>>, id: number, m: M): void {
    const set = map.get(id);
    if (!set?.delete(m)) return;
    this.#subscriptions--;
    if (set.size === 0) map.delete(id);
  }
}
