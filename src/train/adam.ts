// Adam with torch.optim.Adam semantics (defaults lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0 as
// L2 added to the gradient). Each step is one fused kernel per parameter (kernels/adam.ts). The moment
// buffers are created lazily (zeros) the first time a parameter has a gradient and live until dispose():
// they are untracked by tidy. The step count is shared by all parameters (PyTorch keeps one per
// parameter; they agree whenever every parameter gets a gradient at every step).
import { keep, Tensor } from '../autograd/tensor.js';
import { fmtShape, numel, type Gpu } from '../gpu/index.js';
import { adamUpdate } from '../kernels/adam.js';

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

export interface AdamState {
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

export class Adam {
  /** Mutable, for learning-rate schedules. */
  lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  private step_ = 0;
  private m: (Tensor | null)[];
  private v: (Tensor | null)[];
  private readonly gpu: Gpu;

  constructor(
    readonly params: Tensor[],
    opts: AdamOptions = {},
  ) {
    if (params.length === 0) throw new Error('Adam: no parameters to optimise');
    this.gpu = params[0].gpu;
    this.lr = opts.lr ?? 1e-3;
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    const [b1, b2] = this.betas;
    if (!(this.lr >= 0)) throw new Error(`Adam: invalid learning rate ${this.lr}`);
    if (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1)) throw new Error(`Adam: invalid betas (${b1}, ${b2}), each must be in [0, 1)`);
    if (!(this.eps >= 0)) throw new Error(`Adam: invalid eps ${this.eps}`);
    if (!(this.weightDecay >= 0)) throw new Error(`Adam: invalid weight decay ${this.weightDecay}`);
    this.m = params.map(() => null);
    this.v = params.map(() => null);
  }

  private moment(k: number, which: 'm' | 'v'): Tensor {
    const arr = which === 'm' ? this.m : this.v;
    const p = this.params[k];
    return (arr[k] ??= keep(new Tensor(this.gpu, this.gpu.zeros(p.shape, `adam ${which} of ${p.name ?? `param ${k}`}`), false, `adam.${which}`)));
  }

  /** One update of every parameter that has a gradient; parameters without one are left alone. */
  step(): void {
    this.step_++;
    const [beta1, beta2] = this.betas;
    this.params.forEach((p, k) => {
      if (!p.grad) return;
      if (p.grad.size !== p.size) {
        throw new Error(`Adam: gradient ${fmtShape(p.grad.shape)} does not match parameter ${p.name ?? k} ${fmtShape(p.shape)}`);
      }
      const h = { lr: this.lr, beta1, beta2, eps: this.eps, weightDecay: this.weightDecay, step: this.step_ };
      adamUpdate(this.gpu, p.raw, p.grad.raw, this.moment(k, 'm').raw, this.moment(k, 'v').raw, h);
    });
  }

  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }

  /** The step count and the moment buffers by parameter index (created as zeros where not yet used). */
  state(): { step: number; m: Tensor[]; v: Tensor[] } {
    return {
      step: this.step_,
      m: this.params.map((_, k) => this.moment(k, 'm')),
      v: this.params.map((_, k) => this.moment(k, 'v')),
    };
  }

  /** Copies the state to the CPU (for checkpoints). */
  async exportState(): Promise<AdamState> {
    const read = (t: Tensor | null, k: number) => (t ? t.data() : Promise.resolve(new Float32Array(this.params[k].size)));
    const m = await Promise.all(this.m.map(read));
    const v = await Promise.all(this.v.map(read));
    return { step: this.step_, m, v };
  }

  /** Restores a state from exportState (same parameters, same order). */
  importState(s: AdamState): void {
    const n = this.params.length;
    if (!Number.isInteger(s.step) || s.step < 0) throw new Error(`Adam.importState: invalid step ${s.step}`);
    if (s.m.length !== n || s.v.length !== n) {
      throw new Error(`Adam.importState: state has ${s.m.length} first and ${s.v.length} second moments for ${n} parameters`);
    }
    this.params.forEach((p, k) => {
      for (const [which, d] of [['m', s.m[k]], ['v', s.v[k]]] as const) {
        if (d.length !== p.size) {
          throw new Error(`Adam.importState: ${which} of parameter ${p.name ?? k} ${fmtShape(p.shape)} has ${d.length} values, expected ${numel(p.shape)}`);
        }
      }
    });
    this.params.forEach((p, k) => {
      this.moment(k, 'm').assign(this.gpu.upload(s.m[k], p.shape, 'adam m'));
      this.moment(k, 'v').assign(this.gpu.upload(s.v[k], p.shape, 'adam v'));
    });
    this.step_ = s.step;
  }

  /** Frees the moment buffers. */
  dispose(): void {
    for (const t of [...this.m, ...this.v]) t?.dispose();
    this.m = this.params.map(() => null);
    this.v = this.params.map(() => null);
  }
}
