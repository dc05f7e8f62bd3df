// Reductions of a whole tensor to one number, as a workgroup tree: each workgroup sums WG·ITEMS terms
// (ITEMS per invocation, strided by WG so reads stay coalesced, then a shared-memory tree), writing one
// partial sum; passes of `sum.forward` over the partials repeat until one value is left. The first pass
// may sum any per-element term (a squared difference, a total-variation term): `reductionKernel` builds
// it from a WGSL expression, so fused losses read their inputs once.
import { kernel, numel, type Gpu, type Kernel, type RawTensor } from '../gpu/index.js';

const WG = 256;
// 16 terms per invocation: 4096 per workgroup, which keeps thousands of workgroups busy on large tensors
// while cutting the per-workgroup cost (lavapipe sums 16M floats 7x faster than with 4).
const ITEMS = 16;

/**
 * A first-pass reduction kernel summing `term(i)` for i < p.n, times p.scale.
 * `fields`: extra u32/f32 fields of the uniform struct P (after `n: u32, scale: f32`).
 * `decls`: storage bindings from @binding(2) on (@binding(1) is the output `out`).
 * `term`: the body of `fn term(i: u32) -> f32`.
 */
export function reductionKernel(name: string, fields: string, decls: string, term: string): Kernel {
  return kernel(
    name,
    /* wgsl */ `
struct P { n: u32, scale: f32, ${fields} }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${decls}
override WG: u32 = ${WG};
override ITEMS: u32 = ${ITEMS};
var<workgroup> part: array<f32, WG>;

fn term(i: u32) -> f32 { ${term} }

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = wid.x + wid.y * nwg.x;
  let base = g * WG * ITEMS + l;
  var s = 0.0;
  for (var k = 0u; k < ITEMS; k++) {
    let i = base + k * WG;
    if (i < p.n) { s += term(i); }
  }
  part[l] = s;
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off = off / 2u) {
    if (l < off) { part[l] = part[l] + part[l + off]; }
    workgroupBarrier();
  }
  if (l == 0u && (g == 0u || g * WG * ITEMS < p.n)) { out[g] = part[0] * p.scale; }
}`,
  );
}

const sumK = reductionKernel('sum.forward', '', '@group(0) @binding(2) var<storage, read> x: array<f32>;', 'return x[i];');

const bcast = kernel(
  'sum.backward',
  /* wgsl */ `
struct P { n: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
override WG: u32 = ${WG};
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  dx[i] = dy[0] * p.scale;
}`,
);

/**
 * Runs a first-pass reduction kernel over n terms (`items` per invocation), then tree passes until one value is left: returns a
 * [1] tensor holding scale · Σ term(i). `bindings` are the first kernel's inputs; `fields` its extra uniforms.
 */
export function reduceAll(
  gpu: Gpu,
  first: Kernel,
  bindings: Record<string, RawTensor>,
  fields: Record<string, number>,
  n: number,
  scale: number,
  what: string,
  items = ITEMS,
): RawTensor {
  const constants = { ITEMS: items };
  /** Partial sums a pass of k writes: one per workgroup. */
  const partials = (k: Kernel, terms: number) => Math.max(1, Math.ceil(terms / (k.workgroupSize[0] * items)));
  let groups = partials(first, n);
  let cur = gpu.empty(groups === 1 ? [1] : [groups], groups === 1 ? `${what} output` : `${what} partial sums`);
  gpu.dispatch(first, { p: { n, scale: groups === 1 ? scale : 1, ...fields }, out: cur, ...bindings }, gpu.grid(first, n, items), constants);
  while (groups > 1) {
    const m = groups;
    groups = partials(sumK, m);
    const next = gpu.empty(groups === 1 ? [1] : [groups], groups === 1 ? `${what} output` : `${what} partial sums`);
    gpu.dispatch(sumK, { p: { n: m, scale: groups === 1 ? scale : 1 }, out: next, x: cur }, gpu.grid(sumK, m, items), constants);
    gpu.release(cur);
    cur = next;
  }
  return cur;
}

/** scale · Σ x over all elements, as a [1] tensor (sum: scale 1; mean: 1/n). `items`: terms per
 *  invocation (tests lower it to get several passes from small inputs). */
export function sumForward(gpu: Gpu, x: RawTensor, scale = 1, items = ITEMS): RawTensor {
  return reduceAll(gpu, sumK, { x }, {}, numel(x.shape), scale, 'sum', items);
}

/** dx = dy[0] · scale broadcast to `shape` (dy is a [1] tensor). */
export function sumBackward(gpu: Gpu, dy: RawTensor, shape: readonly number[], scale = 1): RawTensor {
  const n = numel(shape);
  const dx = gpu.empty(shape, 'sum dx');
  gpu.dispatch(bcast, { p: { n, scale }, dy, dx }, gpu.grid(bcast, n));
  return dx;
}
