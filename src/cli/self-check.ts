// A conv + bias + relu on the device, compared with the same computation on the CPU in float64.
import { Tensor, noGrad } from '../autograd/tensor.js';
import type { Gpu } from '../gpu/index.js';
import { conv2d } from '../layers/conv.js';
import { relu } from '../layers/elementwise.js';

export interface SelfCheck {
  ok: boolean;
  what: string;
  maxRelErr: number;
  ms: number;
}

export async function selfCheck(gpu: Gpu): Promise<SelfCheck> {
  const [N, C, H, W, O, K] = [1, 3, 19, 23, 8, 3];
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const x = Float32Array.from({ length: N * C * H * W }, rnd);
  const w = Float32Array.from({ length: O * C * K * K }, rnd);
  const b = Float32Array.from({ length: O }, rnd);
  const t0 = performance.now();
  const y = await noGrad(() => {
    const out = relu(conv2d(Tensor.from(gpu, x, [N, C, H, W]), Tensor.from(gpu, w, [O, C, K, K]), Tensor.from(gpu, b, [O]), { padding: 1 }));
    return out.data();
  });
  const ms = performance.now() - t0;
  let maxRelErr = 0;
  for (let o = 0; o < O; o++)
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++) {
        let s = b[o];
        for (let c = 0; c < C; c++)
          for (let u = 0; u < K; u++)
            for (let v = 0; v < K; v++) {
              const ii = i + u - 1;
              const jj = j + v - 1;
              if (ii >= 0 && ii < H && jj >= 0 && jj < W) s += x[(c * H + ii) * W + jj] * w[((o * C + c) * K + u) * K + v];
            }
        const ref = Math.max(s, 0);
        maxRelErr = Math.max(maxRelErr, Math.abs(y[(o * H + i) * W + j] - ref) / Math.max(1, Math.abs(ref)));
      }
  return { ok: maxRelErr < 1e-4, what: `conv2d 3→8 3×3 + relu on 19×23`, maxRelErr, ms };
}
