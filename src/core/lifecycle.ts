/**
 * An instance's life as the outside sees it: serving, then draining once a shutdown began. The
 * in-flight count is what the drain waits for and logs.
 */
export class Lifecycle {
  #draining = false;
  #inFlight = 0;
  #idleWaiters: Array<() => void> = [];

  get draining(): boolean {
    return this.#draining;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  startDraining(): void {
    this.#draining = true;
  }

  requestStarted(): void {
    this.#inFlight++;
  }

  requestEnded(): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
    if (this.#inFlight === 0) for (const w of this.#idleWaiters.splice(0)) w();
  }

  /** Resolves true when no request is in flight, false if the time ran out first. */
  async waitIdle(timeoutMs: number): Promise<boolean> {
    if (this.#inFlight === 0) return true;
    return new Promise<boolean>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#idleWaiters = this.#idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      this.#idleWaiters.push(done);
    });
  }
}
