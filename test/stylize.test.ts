// stylizeImage's options: strength blends with the content, preserveColor keeps the content's chrominance.
import { describe, expect, it } from 'vitest';
import type { Tensor } from '../src/autograd/tensor.js';
import { stylizeImage, transferLuminance } from '../src/api/stylize.js';
import { affine } from '../src/layers/elementwise.js';
import { createImage } from '../src/io/image.js';
import { useGpu } from './helpers/gpu.js';
import { expectClose } from './helpers/opcheck.js';
import { rng } from './helpers/rand.js';

const gpu = useGpu();
const r = rng(3);
const content = createImage(9, 7, Float32Array.from({ length: 3 * 63 }, () => 20 + 200 * r()));
/** "Stylizes" by inverting the image: y = 255 − x. */
const invert = { forward: (x: Tensor) => affine(x, -1, 255) };

describe('stylizeImage', () => {
  it('strength 1 is the network output, 0 the content, 0.25 the blend', async () => {
    const full = await stylizeImage(gpu(), invert, content);
    expectClose(full.data, content.data.map((v) => 255 - v), 1e-6, 'strength 1');
    const none = await stylizeImage(gpu(), invert, content, { strength: 0 });
    expectClose(none.data, content.data, 1e-6, 'strength 0');
    const quarter = await stylizeImage(gpu(), invert, content, { strength: 0.25 });
    expectClose(quarter.data, content.data.map((v) => 0.25 * (255 - v) + 0.75 * v), 1e-6, 'strength 0.25');
    await expect(stylizeImage(gpu(), invert, content, { strength: 2 })).rejects.toThrow(/strength must be between 0 and 1, got 2/);
  });

  it('preserveColor: the luminance of the output with the colours of the content', async () => {
    // Luminance transfer of an image onto itself is the identity (YIQ round trip).
    expectClose(transferLuminance(content, content).data, content.data, 1e-3, 'YIQ round trip');
    // Mid-range colours, so that no output pixel needs clamping to 0..255.
    const mid = createImage(9, 7, Float32Array.from({ length: 3 * 63 }, () => 100 + 60 * r()));
    const out = await stylizeImage(gpu(), invert, mid, { preserveColor: true });
    const n = 63;
    for (let i = 0; i < n; i++) {
      const lum = (d: Float32Array) => 0.299 * d[i] + 0.587 * d[n + i] + 0.114 * d[2 * n + i];
      const chroma = (d: Float32Array) => 0.595716 * d[i] - 0.274453 * d[n + i] - 0.321263 * d[2 * n + i];
      const inv = mid.data.map((v) => 255 - v);
      expect(lum(out.data)).toBeCloseTo(lum(inv), 1);
      expect(chroma(out.data)).toBeCloseTo(chroma(mid.data), 1);
    }
  });
});
