// Tensor + tape. An op's output remembers its inputs and a backward closure; backward() visits the graph
// in reverse creation order (creation order is topological), accumulating gradients on fan-out.
// Memory: tensors made inside tidy() are freed when it returns (except what it returns); gradients of
// intermediate tensors are freed as soon as they have been propagated.
import { numel, type Gpu, type RawTensor } from '../gpu/index.js';
import { axpyInPlace, fillTensor } from '../kernels/elementwise.js';

export type Backward = (dy: RawTensor, needs: readonly boolean[]) => (RawTensor | null)[];

interface GradNode {
  op: string;
  inputs: Tensor[];
  backward: Backward;
  /** Frees what the op saved for backward beyond its inputs and output (e.g. batch statistics). */
  release?: () => void;
}

let nextId = 0;
let noGradDepth = 0;
const scopes: Set<Tensor>[] = [];

export class Tensor {
  readonly id = nextId++;
  grad: Tensor | null = null;
  node: GradNode | null = null;
  private raw_: RawTensor | null;

  constructor(
    readonly gpu: Gpu,
    raw: RawTensor,
    public requiresGrad = false,
    public name?: string,
  ) {
    this.raw_ = raw;
    scopes.at(-1)?.add(this);
  }

  /** A trainable leaf (not tracked by tidy: owned by its module). */
  static param(gpu: Gpu, data: ArrayLike<number>, shape: readonly number[], name?: string): Tensor {
    const t = new Tensor(gpu, gpu.upload(data, shape, name ?? 'parameter'), true, name);
    scopes.at(-1)?.delete(t);
    return t;
  }

  static from(gpu: Gpu, data: ArrayLike<number>, shape: readonly number[], requiresGrad = false): Tensor {
    return new Tensor(gpu, gpu.upload(data, shape), requiresGrad);
  }

  static zeros(gpu: Gpu, shape: readonly number[], requiresGrad = false): Tensor {
    return new Tensor(gpu, gpu.zeros(shape), requiresGrad);
  }

  get raw(): RawTensor {
    if (!this.raw_) throw new Error(`tensor${this.name ? ` ${this.name}` : ''} #${this.id} was disposed and cannot be used`);
    return this.raw_;
  }

  get shape(): readonly number[] {
    return this.raw.shape;
  }

  get size(): number {
    return numel(this.shape);
  }

  get disposed(): boolean {
    return this.raw_ === null;
  }

  async data(): Promise<Float32Array> {
    return this.gpu.read(this.raw);
  }

  /** Replaces the storage (e.g. loading weights into a parameter); the old buffer goes back to the pool. */
  assign(raw: RawTensor): void {
    this.gpu.release(this.raw);
    this.raw_ = raw;
  }

  zeroGrad(): void {
    this.grad?.dispose();
    this.grad = null;
  }

  dispose(): void {
    if (!this.raw_) return;
    this.gpu.release(this.raw_);
    this.raw_ = null;
    this.node?.release?.();
    this.node = null;
    this.zeroGrad();
    for (const s of scopes) s.delete(this);
  }

  backward(dy?: Tensor): void {
    backward(this, dy);
  }
}

/** Wraps an op's output and, when gradients are wanted, records how to differentiate it. */
export function record(op: string, inputs: Tensor[], out: RawTensor, backward: Backward, release?: () => void): Tensor {
  const needs = noGradDepth === 0 && inputs.some((t) => t.requiresGrad);
  const y = new Tensor(inputs[0].gpu, out, needs);
  if (needs) y.node = { op, inputs, backward, release };
  else release?.();
  return y;
}

/** Reverse-mode sweep from `loss` (seeded with ones, or `dy`). Leaf gradients accumulate into `.grad`. */
export function backward(loss: Tensor, dy?: Tensor): void {
  if (!loss.requiresGrad) throw new Error('backward: the tensor does not depend on anything that requires a gradient');
  const gpu = loss.gpu;
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack = [loss];
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    order.push(t);
    for (const i of t.node?.inputs ?? []) if (i.requiresGrad && !seen.has(i)) stack.push(i);
  }
  order.sort((a, b) => b.id - a.id);

  const grads = new Map<Tensor, RawTensor>();
  const seed = dy ? gpu.empty(loss.shape, 'seed grad') : fillTensor(gpu, loss.shape, 1);
  if (dy) gpu.copy(dy.raw, seed);
  grads.set(loss, seed);
  for (const t of order) {
    const g = grads.get(t);
    if (!g) continue;
    grads.delete(t);
    if (!t.node) {
      // A leaf: keep (or accumulate) its gradient.
      if (t.grad) {
        axpyInPlace(gpu, t.grad.raw, g);
        gpu.release(g);
      } else {
        t.grad = new Tensor(gpu, g);
        for (const s of scopes) s.delete(t.grad);
      }
      continue;
    }
    const needs = t.node.inputs.map((i) => i.requiresGrad);
    const gs = t.node.backward(g, needs);
    gpu.release(g);
    t.node.inputs.forEach((inp, k) => {
      const gi = gs[k];
      if (!gi) return;
      if (!needs[k]) {
        gpu.release(gi);
        return;
      }
      const prev = grads.get(inp);
      if (prev) {
        axpyInPlace(gpu, prev, gi);
        gpu.release(gi);
      } else grads.set(inp, gi);
    });
  }
}

type Kept = Tensor | Kept[] | Map<unknown, Kept> | { [k: string]: Kept } | number | string | boolean | null | undefined | void;

function collect(v: unknown, out: Set<Tensor>): void {
  if (v instanceof Tensor) out.add(v);
  else if (Array.isArray(v)) v.forEach((x) => collect(x, out));
  else if (v instanceof Map) v.forEach((x) => collect(x, out));
  else if (v && typeof v === 'object' && !ArrayBuffer.isView(v)) Object.values(v).forEach((x) => collect(x, out));
}

function endScope(result: unknown): void {
  const scope = scopes.pop()!;
  const kept = new Set<Tensor>();
  collect(result, kept);
  for (const t of scope) {
    if (kept.has(t)) scopes.at(-1)?.add(t);
    else t.dispose();
  }
}

/** Runs fn and frees every tensor it created except those it returns (which move to the outer scope). */
export function tidy<T extends Kept>(fn: () => T): T {
  scopes.push(new Set());
  let result: T | undefined;
  try {
    result = fn();
    return result;
  } finally {
    endScope(result);
  }
}

export async function tidyAsync<T extends Kept>(fn: () => Promise<T>): Promise<T> {
  scopes.push(new Set());
  let result: T | undefined;
  try {
    result = await fn();
    return result;
  } finally {
    endScope(result);
  }
}

/** Takes a tensor out of the enclosing tidy scopes so it outlives them. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

/** Inference: ops inside record nothing and keep nothing for backward. */
export function noGrad<T>(fn: () => T): T {
  noGradDepth++;
  try {
    return fn();
  } finally {
    noGradDepth--;
  }
}

export async function noGradAsync<T>(fn: () => Promise<T>): Promise<T> {
  noGradDepth++;
  try {
    return await fn();
  } finally {
    noGradDepth--;
  }
}

export function isGradEnabled(): boolean {
  return noGradDepth === 0;
}
