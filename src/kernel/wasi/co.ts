// Code that may or may not block, written once. A system call is a generator that `yield*`s
// `wait(x)` for every value that might be a Promise; `run` drives it synchronously as long as
// nothing is a Promise, and only turns into a Promise at the first one that is. So a program on
// an in-memory filesystem never blocks, and the same code serves a filesystem that always does.

export type MaybePromise<T> = T | Promise<T>;

/** A computation that yields only Promises and returns T. */
export type Co<T> = Generator<Promise<unknown>, T, unknown>;

export function isPromise<T>(v: MaybePromise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

/** `const x = yield* wait(maybePromise)`: the value, suspending the computation if it is a Promise. */
export function* wait<T>(v: MaybePromise<T>): Co<T> {
  if (!isPromise(v)) return v;
  return (yield v) as T;
}

/** Run a computation: its result now if it never waited on a Promise, else a Promise of it. */
export function run<T>(gen: Co<T>): MaybePromise<T> {
  const step = gen.next();
  if (step.done) return step.value;
  return resume(gen, step.value);
}

async function resume<T>(gen: Co<T>, pending: Promise<unknown>): Promise<T> {
  for (;;) {
    let value: unknown;
    let failed = false;
    try {
      value = await pending;
    } catch (err) {
      failed = true;
      value = err;
    }
    const step = failed ? gen.throw(value) : gen.next(value);
    if (step.done) return step.value;
    pending = step.value;
  }
}

/** A computation as a Promise (for callers that are async anyway). */
export async function runAsync<T>(gen: Co<T>): Promise<T> {
  return run(gen);
}
