/** A promise together with the functions that settle it. */
export class Deferred<T> {
  readonly promise: Promise<T>;
  resolve!: (value: T) => void;
  reject!: (reason: unknown) => void;
  #settled = false;

  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = (value) => {
        this.#settled = true;
        resolve(value);
      };
      this.reject = (reason) => {
        this.#settled = true;
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- callers pass through whatever was thrown
        reject(reason);
      };
    });
  }

  /** True once `resolve` or `reject` has been called. */
  get settled(): boolean {
    return this.#settled;
  }
}
