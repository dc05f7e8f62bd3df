// Conditional instance norm (one network, many styles): the row blend against float64, the norm's gradients, and
// multi-style TransformerNets against the float64 references run on the blended single-style state.
import { describe, expect, it } from 'vitest';
import { Tensor, tidy } from '../src/autograd/tensor.js';
import { instanceNorm2d, mixRows } from '../src/layers/norm.js';
import { mseLoss } from '../src/layers/loss.js';
import { loadTransformerNet, saveTransformerNet } from '../src/nets/model-file.js';
import { TransformerNet } from '../src/nets/transformer-net.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { useGpu } from './helpers/gpu.js';
import { checkOp, expectClose, input } from './helpers/opcheck.js';
import { numel, rng, uniform } from './helpers/rand.js';
import { normRef, normVjp } from './reference/norm.js';
import { paperRef, pytorchExamplesRef, type A, type State } from './reference/transformer-net.js';

const gpu = useGpu();

/** y[c] = Σ_s w[s] p[s, c], from the definition. */
function mixRef(p: Float64Array, w: readonly number[], C: number): Float64Array {
  const y = new Float64Array(C);
  w.forEach((ws, s) => {
    for (let c = 0; c < C; c++) y[c] += ws * p[s * C + c];
  });
  return y;
}

describe('mixRows and conditional instance norm', () => {
  for (const [S, C] of [[1, 3], [3, 5], [4, 67]] as const) {
    it(`mixRows [${S},${C}] forward and gradient`, async () => {
      const w = Array.from({ length: S }, (_, s) => (s + 1) / ((S * (S + 1)) / 2));
      await checkOp(gpu(), {
        name: `mixRows ${S}x${C}`,
        inputs: [input([S, C], 3 + S)],
        gpu: ([p]) => mixRows(p, Tensor.from(gpu(), w, [S])),
        ref: ([p]) => ({ y: mixRef(p, w, C), shape: [C] }),
        vjp: (_xs, dy) => [Float64Array.from({ length: S * C }, (_, i) => w[Math.floor(i / C)] * dy[i % C])],
      });
    });
  }

  it('instance norm with blended γ, β: forward and gradients w.r.t. x and the per-style rows', async () => {
    const [N, C, H, W, S] = [2, 5, 6, 7, 3];
    const w = [0.2, 0.5, 0.3];
    const o = { shape: [N, C, H, W], perChannel: false, eps: 1e-5 };
    await checkOp(gpu(), {
      name: 'conditional instance norm',
      inputs: [input([N, C, H, W], 1, 3), input([S, C], 2), input([S, C], 3)],
      gpu: ([x, g, b]) => {
        const style = Tensor.from(gpu(), w, [S]);
        return instanceNorm2d(x, mixRows(g, style), mixRows(b, style));
      },
      ref: ([x, g, b]) => normRef(x, mixRef(g, w, C), mixRef(b, w, C), o),
      vjp: ([x, g, b], dy) => {
        const r = normVjp(x, mixRef(g, w, C), mixRef(b, w, C), dy, o);
        const rows = (d: Float64Array) => Float64Array.from({ length: S * C }, (_, i) => w[Math.floor(i / C)] * d[i % C]);
        return [r.dx, rows(r.dw!), rows(r.db!)];
      },
      tolGrad: 2e-5,
    });
  });
});

/** Random state for `net`'s names and shapes; conditional norms get distinct rows per style. */
function randomState(net: TransformerNet, seed: number): State {
  const r = rng(seed);
  const state: State = new Map();
  for (const [k, shape] of net.stateShapes()) {
    const n = numel([...shape]);
    const isNorm = /(in\d|norm\d)\.(weight|bias)$/.test(k);
    const fan = shape.length === 4 ? shape[1] * shape[2] * shape[3] : 1;
    const data = Float32Array.from({ length: n }, () => (isNorm ? (k.endsWith('weight') ? 0.5 + r() : r() - 0.5) : (2 * r() - 1) / Math.sqrt(fan)));
    state.set(k, { data, shape: [...shape] });
  }
  return state;
}

/** The single-style state a blend stands for: every [S, C] norm row blended by w (from the definition). */
function blended(state: State, w: readonly number[]): State {
  const out: State = new Map();
  for (const [k, t] of state) {
    if (t.shape.length === 2) out.set(k, { data: Float32Array.from(mixRef(Float64Array.from(t.data), w, t.shape[1])), shape: [t.shape[1]] });
    else out.set(k, t);
  }
  return out;
}

const image = (shape: number[], seed: number): A => ({ data: uniform(numel(shape), rng(seed), 0, 255), shape: shape as A['shape'] });

async function forward(net: TransformerNet, x: A, style: number | number[]): Promise<Float32Array> {
  const y = tidy(() => net.forward(Tensor.from(gpu(), Float32Array.from(x.data), x.shape), { style, matchInputSize: false }));
  try {
    return await y.data();
  } finally {
    y.dispose();
  }
}

describe('multi-style TransformerNet (conditional instance norm)', () => {
  for (const variant of ['pytorch-examples', 'paper'] as const) {
    it(`${variant}: style k and blends equal the float64 network on the blended rows; files keep the styles`, async () => {
      const S = 3;
      const net = new TransformerNet(gpu(), { variant, norm: 'conditional-instance', styles: S, width: 4, rand: rng(1) }).eval();
      const ref = variant === 'paper' ? (st: State, x: A) => paperRef(st, x, 'instance') : pytorchExamplesRef;
      try {
        expect(net.stateShapes().get(variant === 'paper' ? 'res2.norm1.weight' : 'res2.in1.weight')).toEqual([S, 16]);
        const state = randomState(net, 7);
        net.loadStateDict(state);
        const x = image([1, 3, 16, 12], 8);
        for (const [style, w] of [[1, [0, 1, 0]], [[1, 0, 3], [0.25, 0, 0.75]]] as [number | number[], number[]][]) {
          expectClose(await forward(net, x, style), ref(blended(state, w), x).data, 1e-4, `${variant} style ${JSON.stringify(style)}`);
        }
        expect(() => tidy(() => net.forward(Tensor.zeros(gpu(), [1, 3, 8, 8]), { style: 3 }))).toThrow('TransformerNet: style index 3 out of range (the model has 3 styles: 0..2)');
        expect(() => tidy(() => net.forward(Tensor.zeros(gpu(), [1, 3, 8, 8]), { style: [1, -1, 1] }))).toThrow(/non-negative with a positive sum/);

        const bytes = await saveTransformerNet(net, { style_info: '[]' });
        expect(readSafetensors(bytes).metadata).toMatchObject({ norm: 'conditional-instance', styles: '3' });
        const again = loadTransformerNet(gpu(), bytes);
        expect([again.norm, again.styles, again.width]).toEqual(['conditional-instance', 3, 4]);
        expect(await forward(again, x, 2)).toEqual(await forward(net, x, 2));
        again.dispose();
      } finally {
        net.dispose();
      }
    });
  }

  it('pytorch-examples with a tanh output: the float64 network then 127.5·tanh + 127.5; the file keeps it', async () => {
    const net = new TransformerNet(gpu(), { variant: 'pytorch-examples', norm: 'conditional-instance', styles: 2, width: 4, output: 'tanh', rand: rng(11) }).eval();
    try {
      const state = randomState(net, 12);
      net.loadStateDict(state);
      const x = image([1, 3, 12, 16], 13);
      const want = pytorchExamplesRef(blended(state, [0, 1]), x).data.map((v) => 127.5 * Math.tanh(v) + 127.5);
      expectClose(await forward(net, x, 1), want, 1e-4, 'pytorch-examples, tanh output');
      const bytes = await saveTransformerNet(net);
      expect(readSafetensors(bytes).metadata.output).toBe('tanh');
      const again = loadTransformerNet(gpu(), bytes);
      expect(again.output).toBe('tanh');
      expect(await forward(again, x, 1)).toEqual(await forward(net, x, 1));
      again.dispose();
      expect(() => new TransformerNet(gpu(), { variant: 'paper', output: 'linear' })).toThrow('the paper variant ends in its scaled tanh');
    } finally {
      net.dispose();
    }
  });

  it("training on one style moves only that style's rows of every conditional norm", async () => {
    const net = new TransformerNet(gpu(), { variant: 'pytorch-examples', norm: 'conditional-instance', styles: 3, width: 2, rand: rng(3) });
    try {
      tidy(() => {
        const x = Tensor.from(gpu(), uniform(3 * 16 * 16, rng(4), 0, 255), [1, 3, 16, 16]);
        mseLoss(net.forward(x, { style: 2 }), Tensor.zeros(gpu(), [1, 3, 16, 16])).backward();
      });
      for (const name of ['in1.weight', 'res3.in2.bias', 'in5.weight']) {
        const g = await net.stateDict().get(name)!.grad!.data();
        const C = g.length / 3;
        const norms = [0, 1, 2].map((s) => Math.hypot(...g.subarray(s * C, (s + 1) * C)));
        expect(norms.slice(0, 2), name).toEqual([0, 0]);
        expect(norms[2], name).toBeGreaterThan(0);
      }
      expect(net.parameters().every((p) => p.grad !== null)).toBe(true);
    } finally {
      net.zeroGrad();
      net.dispose();
    }
  });
});
