/** A FIFO lock; waiting longer than `timeoutMs` fails loudly instead of hanging forever. */
export class Mutex {
  #locked = false;
  #waiters: Array<() => void> = [];

  async lock(timeoutMs: number, what: string): Promise<void> {
    if (!this.#locked) {
      this.#locked = true;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const grant = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(grant);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new Error(`${what}: lock not granted within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.push(grant);
    });
  }

  unlock(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#locked = false;
  }
}
