// Module: named parameters and buffers (a PyTorch-style state dict), children, train/eval mode, freezing.
import { Tensor } from '../autograd/tensor.js';
import type { Gpu } from '../gpu/index.js';
import { fmtShape } from '../gpu/errors.js';

export abstract class Module {
  training = true;
  private params = new Map<string, Tensor>();
  /** Non-trainable state saved with the model (batch-norm running statistics). */
  private buffers = new Map<string, Tensor>();
  private children = new Map<string, Module>();

  constructor(readonly gpu: Gpu) {}

  protected param(name: string, data: ArrayLike<number>, shape: readonly number[]): Tensor {
    const t = Tensor.param(this.gpu, data, shape, name);
    this.params.set(name, t);
    return t;
  }

  protected buffer(name: string, data: ArrayLike<number>, shape: readonly number[]): Tensor {
    const t = Tensor.param(this.gpu, data, shape, name);
    t.requiresGrad = false;
    this.buffers.set(name, t);
    return t;
  }

  protected child<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  /** Trainable parameters with dotted names (`res1.conv1.conv2d.weight`), in registration order. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [...this.params].map(([k, t]) => [prefix + k, t]);
    for (const [k, c] of this.children) out.push(...c.namedParameters(`${prefix}${k}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [...this.buffers].map(([k, t]) => [prefix + k, t]);
    for (const [k, c] of this.children) out.push(...c.namedBuffers(`${prefix}${k}.`));
    return out;
  }

  /** Parameters and buffers, by name. */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /** Copies tensors into the state by name; shapes must match exactly, and no name may be missing (strict). */
  loadStateDict(entries: Map<string, { data: Float32Array; shape: readonly number[] }>, strict = true): void {
    const state = this.stateDict();
    if (strict) {
      const missing = [...state.keys()].filter((k) => !entries.has(k));
      const extra = [...entries.keys()].filter((k) => !state.has(k));
      if (missing.length || extra.length) {
        throw new Error(
          `loadStateDict: ${missing.length ? `missing tensors: ${missing.join(', ')}` : ''}` +
            `${missing.length && extra.length ? '; ' : ''}${extra.length ? `unexpected tensors: ${extra.join(', ')}` : ''}`,
        );
      }
    }
    for (const [k, t] of state) {
      const e = entries.get(k);
      if (!e) continue;
      if (e.shape.length !== t.shape.length || e.shape.some((d, i) => d !== t.shape[i])) {
        throw new Error(`loadStateDict: tensor ${k}: expected shape ${fmtShape(t.shape)}, found ${fmtShape(e.shape)}`);
      }
      t.assign(this.gpu.upload(e.data, e.shape, k));
    }
  }

  train(on = true): this {
    this.training = on;
    for (const c of this.children.values()) c.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Frozen parameters get no gradient (a loss network). */
  freeze(): this {
    for (const p of this.parameters()) p.requiresGrad = false;
    return this;
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  dispose(): void {
    for (const [, t] of this.stateDict()) t.dispose();
  }
}
