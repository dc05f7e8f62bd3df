import { describe, expect, it } from 'vitest';
import { keep, Tensor, tidy } from '../src/autograd/tensor.js';
import { mseLoss } from '../src/layers/loss.js';
import { Adam } from '../src/train/adam.js';
import { useGpu } from './helpers/gpu.js';
import { expectClose } from './helpers/opcheck.js';
import { numel, randn, rng } from './helpers/rand.js';

const gpu = useGpu();

/** torch.optim.Adam from its documented algorithm, in float64. */
class RefAdam {
  t = 0;
  m: Float64Array[];
  v: Float64Array[];
  constructor(
    public p: Float64Array[],
    private o: { lr: number; b1: number; b2: number; eps: number; wd: number },
  ) {
    this.m = p.map((x) => new Float64Array(x.length));
    this.v = p.map((x) => new Float64Array(x.length));
  }
  step(grads: (Float64Array | null)[]): void {
    this.t++;
    const { lr, b1, b2, eps, wd } = this.o;
    grads.forEach((g0, k) => {
      if (!g0) return;
      const p = this.p[k];
      for (let i = 0; i < p.length; i++) {
        const g = g0[i] + wd * p[i];
        this.m[k][i] = b1 * this.m[k][i] + (1 - b1) * g;
        this.v[k][i] = b2 * this.v[k][i] + (1 - b2) * g * g;
        const mh = this.m[k][i] / (1 - b1 ** this.t);
        const vh = this.v[k][i] / (1 - b2 ** this.t);
        p[i] -= (lr * mh) / (Math.sqrt(vh) + eps);
      }
    });
  }
}

const SHAPES = [[3, 5], [257], [2, 3, 3, 3], [7]];

function setGrad(p: Tensor, g: Float64Array): void {
  p.zeroGrad();
  p.grad = keep(Tensor.from(p.gpu, Float32Array.from(g), p.shape));
}

describe('Adam', () => {
  for (const wd of [0, 0.1]) {
    it(`5 steps match a float64 Adam (weight decay ${wd})`, async () => {
      const r = rng(11 + wd * 10);
      const init = SHAPES.map((s) => randn(numel(s), r));
      const params = SHAPES.map((s, k) => Tensor.param(gpu(), Float32Array.from(init[k]), s, `p${k}`));
      const o = { lr: 0.05, b1: 0.9, b2: 0.999, eps: 1e-8, wd };
      const opt = new Adam(params, { lr: o.lr, weightDecay: wd });
      const ref = new RefAdam(init.map((x) => Float64Array.from(x)), o);
      for (let t = 0; t < 5; t++) {
        // Parameter 3 never has a gradient: it must stay as it is.
        const grads = SHAPES.map((s, k) => (k === 3 ? null : randn(numel(s), r, 0.5 + t)));
        params.forEach((p, k) => (grads[k] ? setGrad(p, grads[k]!) : p.zeroGrad()));
        tidy(() => opt.step());
        ref.step(grads);
      }
      const st = await opt.exportState();
      expect(st.step).toBe(5);
      for (let k = 0; k < SHAPES.length; k++) {
        const got = await params[k].data();
        // Compare the change of each parameter (the parameters themselves are dominated by their start).
        const d = got.map((v, i) => v - init[k][i]);
        const dr = ref.p[k].map((v, i) => v - init[k][i]);
        if (k === 3) {
          expect([...got]).toEqual([...Float32Array.from(init[k])]);
          expect(st.m[k].every((x) => x === 0) && st.v[k].every((x) => x === 0)).toBe(true);
          continue;
        }
        expectClose(d, dr, 1e-5, `param ${k} update`);
        expectClose(st.m[k], ref.m[k], 1e-5, `param ${k} first moment`);
        expectClose(st.v[k], ref.v[k], 1e-5, `param ${k} second moment`);
      }
      const s = opt.state();
      expect(s.step).toBe(5);
      expect(s.m.map((t) => t.shape)).toEqual(SHAPES);
      opt.dispose();
      params.forEach((p) => p.dispose());
    });
  }

  it('defaults are PyTorch’s', () => {
    const p = Tensor.param(gpu(), [1], [1]);
    const opt = new Adam([p]);
    expect([opt.lr, opt.betas, opt.eps, opt.weightDecay]).toEqual([1e-3, [0.9, 0.999], 1e-8, 0]);
    p.dispose();
  });

  it('exportState / importState resume the same trajectory', async () => {
    const r = rng(5);
    const init = randn(40, r);
    const mk = () => Tensor.param(gpu(), Float32Array.from(init), [5, 8]);
    const [a, b] = [mk(), mk()];
    const optA = new Adam([a], { lr: 0.01 });
    const gs = [0, 1, 2, 3].map(() => randn(40, r));
    setGrad(a, gs[0]);
    optA.step();
    setGrad(a, gs[1]);
    optA.step();
    // b catches up: same parameter values and optimiser state, then both take the same steps.
    b.assign(gpu().upload(await a.data(), [5, 8]));
    const optB = new Adam([b], { lr: 0.01 });
    optB.importState(await optA.exportState());
    expect(optB.state().step).toBe(2);
    for (const g of gs.slice(2)) {
      setGrad(a, g);
      setGrad(b, g);
      optA.step();
      optB.step();
    }
    expect([...(await b.data())]).toEqual([...(await a.data())]);
    expect(() => optB.importState({ step: 1, m: [new Float32Array(3)], v: [new Float32Array(40)] })).toThrow(/m of parameter 0 \[5,8\] has 3 values/);
    [optA, optB].forEach((o) => o.dispose());
    [a, b].forEach((p) => p.dispose());
  });

  it('minimises a quadratic: mse(p, target) falls by more than 100× in 200 steps', async () => {
    const r = rng(9);
    const shape = [4, 16];
    const p = Tensor.param(gpu(), Float32Array.from(randn(64, r)), shape);
    const target = keep(Tensor.from(gpu(), Float32Array.from(randn(64, r)), shape));
    const opt = new Adam([p], { lr: 0.05 });
    const lossNow = async () => {
      const l = tidy(() => mseLoss(p, target));
      const v = (await l.data())[0];
      l.dispose();
      return v;
    };
    const first = await lossNow();
    for (let i = 0; i < 200; i++) {
      tidy(() => mseLoss(p, target).backward());
      opt.step();
      opt.zeroGrad();
    }
    const last = await lossNow();
    expect(first).toBeGreaterThan(0.5);
    expect(last).toBeLessThan(first / 100);
    opt.dispose();
    p.dispose();
    target.dispose();
  });
});
