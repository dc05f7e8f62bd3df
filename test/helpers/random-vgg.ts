// Random VGG-16/VGG-19 weights with the real shapes (torchvision names), for tests that need a loss network file.
import { VGG_LAYOUT, type State } from '../reference/cnn.js';
import { rng } from './rand.js';

/** Out-channels of each conv of the layout, block by block (64, 128, 256, 512, 512). */
function convShapes(arch: keyof typeof VGG_LAYOUT): [number, number, number][] {
  const { convs, pools } = VGG_LAYOUT[arch];
  let cin = 3;
  return convs.map((i) => {
    const cout = [64, 128, 256, 512, 512][pools.filter((p) => p < i).length];
    const row: [number, number, number] = [i, cin, cout];
    cin = cout;
    return row;
  });
}

/** Real shapes for the first `depth` convs, He-uniform weights and small biases (activations stay O(1)). */
export function randomVgg(depth: number, seed: number, arch: keyof typeof VGG_LAYOUT = 'vgg16'): State {
  const r = rng(seed);
  const state: State = new Map();
  for (const [i, cin, cout] of convShapes(arch).slice(0, depth)) {
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
