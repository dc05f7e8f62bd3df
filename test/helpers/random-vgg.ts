// Random VGG-16 weights with the real shapes (torchvision names), for tests that need a loss network file.
import type { State } from '../reference/cnn.js';
import { rng } from './rand.js';

/** [index in features, in-channels, out-channels] of VGG-16's thirteen 3×3 convs. */
const CONVS: [number, number, number][] = [
  [0, 3, 64], [2, 64, 64], [5, 64, 128], [7, 128, 128], [10, 128, 256], [12, 256, 256], [14, 256, 256],
  [17, 256, 512], [19, 512, 512], [21, 512, 512], [24, 512, 512], [26, 512, 512], [28, 512, 512],
];

/** Real VGG-16 shapes for the first `depth` convs, He-uniform weights and small biases (activations stay O(1)). */
export function randomVgg(depth: number, seed: number): State {
  const r = rng(seed);
  const state: State = new Map();
  for (const [i, cin, cout] of CONVS.slice(0, depth)) {
    const bound = Math.sqrt(6 / (cin * 9));
    const w = new Float32Array(cout * cin * 9);
    for (let k = 0; k < w.length; k++) w[k] = (2 * r() - 1) * bound;
    const b = new Float32Array(cout);
    for (let k = 0; k < cout; k++) b[k] = 0.1 * (2 * r() - 1);
    state.set(`features.${i}.weight`, { data: w, shape: [cout, cin, 3, 3] });
    state.set(`features.${i}.bias`, { data: b, shape: [cout] });
  }
  return state;
}
