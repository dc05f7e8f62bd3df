/** The error `f` throws (so a test can look at its class and message); fails when it throws nothing. */
export function errorOf(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}
