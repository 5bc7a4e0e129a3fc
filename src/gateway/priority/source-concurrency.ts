/**
 * Requests in flight per source address (R13.1). Admission slots are taken before a request's body
 * is read, so a source that opens requests and sends their bodies slowly holds its slots for as
 * long as the request timeout: without a cap per source, a few hundred such requests from one
 * address would take every shared slot, and the same trick on a priority path its reserve. The cap
 * leaves the other sources their share; a source's entry goes when its last request ends, so the
 * map holds only the sources with requests in flight.
 */
export class SourceConcurrency {
  readonly #inFlight = new Map<string, number>();

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`per-source limit must be a whole number ≥ 1, got ${limit}`);
  }

  /** A release function (idempotent) when the source is under its limit; null when it is at it. */
  take(source: string): (() => void) | null {
    const n = this.#inFlight.get(source) ?? 0;
    if (n >= this.limit) return null;
    this.#inFlight.set(source, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#inFlight.get(source) ?? 1) - 1;
      if (left <= 0) this.#inFlight.delete(source);
      else this.#inFlight.set(source, left);
    };
  }

  /** Sources with requests in flight (for the status page of the gateway and for tests). */
  get sources(): number {
    return this.#inFlight.size;
  }
}
