// Grids folded early: the device's limit (65,535 workgroups per dimension) cannot be reached by a small test, so
// Gpu.fold, the one place grids fold, folds at `at` instead. Kernels must index with wid.x + wid.y·nwg.x
// (gid.x + gid.y·nwg.x·WG) and ignore the workgroups past the end of the last row.
import type { Gpu } from '../../src/gpu/index.js';

export async function withGridsFoldedAt(g: Gpu, at: number, fn: () => Promise<void>): Promise<void> {
  const fold = g.fold.bind(g);
  g.fold = (groups: number, _what: string, z = 1) => {
    const n = Math.max(1, groups);
    return n <= at ? [n, 1, z] : [at, Math.ceil(n / at), z];
  };
  try {
    await fn();
  } finally {
    g.fold = fold;
  }
}
