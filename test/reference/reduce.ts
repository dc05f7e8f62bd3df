// Float64 references for reductions to one number, from the math.
import type { RefOut } from '../helpers/opcheck.js';

export function sumRef(x: Float64Array, scale = 1): RefOut {
  let s = 0;
  for (const v of x) s += v;
  return { y: Float64Array.of(s * scale), shape: [1] };
}

/** d(scale·Σx)/dx · dy = dy·scale everywhere. */
export function sumVjp(n: number, dy: Float64Array, scale = 1): Float64Array {
  return new Float64Array(n).fill(dy[0] * scale);
}
