/**
 * A Map with a hard size bound and least-recently-used eviction, for per-key state that an
 * attacker controls the keys of (source IPs, login ids): memory stays bounded whatever they send.
 *
 * Map keeps insertion order, so "touch" is delete + set and the oldest entry is the first key.
 * When full, the `evictable` predicate is asked about the few oldest entries first, so that an
 * entry still carrying a lock is not dropped while an idle one is available; if none of them is
 * evictable, the oldest goes anyway (the bound wins over the lock).
 */
export class BoundedMap<K, V> {
  readonly #max: number;
  readonly #map = new Map<K, V>();
  readonly #evictable: (value: V) => boolean;
  readonly #scan: number;
  #evicted = 0;

  constructor(maxEntries: number, evictable: (value: V) => boolean = () => true, scan = 16) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new Error(`BoundedMap: maxEntries must be a positive integer, got ${maxEntries}`);
    this.#max = maxEntries;
    this.#evictable = evictable;
    this.#scan = Math.max(1, scan);
  }

  get size(): number {
    return this.#map.size;
  }

  /** How many entries were pushed out by the bound (not by pruning). */
  get evicted(): number {
    return this.#evicted;
  }

  /** Reads without changing recency. */
  peek(key: K): V | undefined {
    return this.#map.get(key);
  }

  /** Reads and marks as most recently used. */
  get(key: K): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }

  /** The entry for key, created by `make` when absent; marked most recently used. */
  getOrCreate(key: K, make: () => V): V {
    const found = this.get(key);
    if (found !== undefined) return found;
    const v = make();
    this.#map.set(key, v);
    if (this.#map.size > this.#max) this.#evictOne(key);
    return v;
  }

  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  /** Removes every entry for which `drop` says so; returns how many went. */
  prune(drop: (value: V, key: K) => boolean): number {
    let n = 0;
    for (const [k, v] of this.#map) {
      if (drop(v, k)) {
        this.#map.delete(k);
        n++;
      }
    }
    return n;
  }

  entries(): IterableIterator<[K, V]> {
    return this.#map.entries();
  }

  #evictOne(justAdded: K): void {
    let oldest: K | undefined;
    let seen = 0;
    for (const [k, v] of this.#map) {
      if (k === justAdded) continue;
      if (oldest === undefined) oldest = k;
      if (this.#evictable(v)) {
        this.#map.delete(k);
        this.#evicted++;
        return;
      }
      if (++seen >= this.#scan) break;
    }
    if (oldest !== undefined) {
      this.#map.delete(oldest);
      this.#evicted++;
    }
  }
}
