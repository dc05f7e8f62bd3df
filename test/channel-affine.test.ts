import { describe, expect, it } from 'vitest';
import { Tensor, tidy } from '../src/autograd/tensor.js';
import { ShapeError } from '../src/gpu/errors.js';
import { channelAffine, parsePreprocess, preprocessImage } from '../src/layers/channel-affine.js';
import { useGpu } from './helpers/gpu.js';
import { checkOp, expectClose, input } from './helpers/opcheck.js';
import { rng, uniform } from './helpers/rand.js';
import { channelAffineRef, preprocessRef } from './reference/cnn.js';

const gpu = useGpu();

describe('channelAffine', () => {
  // [x shape, scale, shift, perm]: identity, permutations, repeats, fewer and more output channels, planes of
  // 1, odd and above the 256-wide workgroup, batch > 1, rank 2 and 3.
  const CASES: [number[], number[], number[], number[] | undefined][] = [
    [[1, 3, 1, 1], [2, -0.5, 3], [0.1, 0.2, -0.3], undefined],
    [[2, 3, 7, 13], [1, 1, 1], [-103.939, -116.779, -123.68], [2, 1, 0]],
    [[3, 5, 17, 33], [0.3, -1.2, 2.5, 0.7, 1.1], [1, 2, 3, 4, 5], [4, 0, 3, 1, 2]],
    [[2, 3, 5, 7], [1, 2, 3, 4, 5], [0, 0, 1, 0, -1], [0, 0, 2, 1, 0]],
    [[2, 4, 9, 11], [-1.5, 0.5], [0.25, 0], [3, 1]],
    [[2, 3, 65], [0.5, 0.25, 2], [1, 1, 1], [1, 2, 0]],
    [[7, 3], [1, 2, 3], [0, 0, 0], [2, 2, 2]],
  ];
  for (const [k, [shape, scale, shift, perm]] of CASES.entries()) {
    it(`forward and gradient on ${JSON.stringify(shape)}, perm ${JSON.stringify(perm)}`, async () => {
      const r = channelAffineRef(shape, scale, shift, perm);
      await checkOp(gpu(), {
        name: `channelAffine ${shape}`,
        inputs: [input(shape, 40 + k, 3)],
        gpu: ([x]) => channelAffine(x, scale, shift, perm),
        ref: ([x]) => r.ref(x),
        vjp: ([x], dy) => [r.vjp(x, dy)],
      });
    });
  }

  it('shape errors name the op and every shape', () => {
    const x = Tensor.zeros(gpu(), [2, 3, 4, 4]);
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(ShapeError);
        return (e as Error).message;
      }
      throw new Error('no error');
    };
    expect(err(() => channelAffine(x, [1, 2], [0, 0]))).toBe('channelAffine: scale and shift must have one entry per channel (3); x [2,3,4,4], scale [2], shift [2]');
    expect(err(() => channelAffine(x, [1, 2, 3], [0, 0]))).toBe('channelAffine: scale and shift must have one entry per channel; x [2,3,4,4], scale [3], shift [2]');
    expect(err(() => channelAffine(x, [1, 2], [0, 0], [0, 1, 2]))).toBe(
      'channelAffine: scale, shift and perm must have one entry per output channel; x [2,3,4,4], scale [2], shift [2], perm [3]',
    );
    expect(err(() => channelAffine(x, [1, 2, 3], [0, 0, 0], [0, 3, 1]))).toBe(
      'channelAffine: perm[1] = 3 is not a channel of x (0..2); x [2,3,4,4], scale [3], shift [3], perm [3]',
    );
    expect(err(() => channelAffine(Tensor.zeros(gpu(), [5]), [1], [0]))).toMatch(/^channelAffine: x must have at least 2 dimensions.*; x \[5\], scale \[1\], shift \[1\]$/);
    expect(err(() => preprocessImage(Tensor.zeros(gpu(), [1, 4, 2, 2]), 'bgr255_mean_sub'))).toMatch(/^preprocess: input must be RGB images \[N,3,H,W\].*; x \[1,4,2,2\]$/);
    x.dispose();
  });
});

describe('input preprocessing', () => {
  it('rgb01_imagenet_norm and bgr255_mean_sub match their definitions', async () => {
    const shape = [2, 3, 5, 9];
    const x = uniform(2 * 3 * 5 * 9, rng(3), 0, 255);
    for (const name of ['rgb01_imagenet_norm', 'bgr255_mean_sub'] as const) {
      const y = tidy(() => preprocessImage(Tensor.from(gpu(), Float32Array.from(x), shape), name));
      expectClose(await y.data(), preprocessRef(name, x, shape), 1e-6, name);
      y.dispose();
    }
  });

  it('names: the leading token of the metadata value counts', () => {
    expect(parsePreprocess('rgb01_imagenet_norm')).toBe('rgb01_imagenet_norm');
    expect(parsePreprocess('rgb01_imagenet_norm, 224x224 (already normalised; use as is)')).toBe('rgb01_imagenet_norm');
    expect(parsePreprocess(' bgr255_mean_sub 96x128')).toBe('bgr255_mean_sub');
    expect(() => parsePreprocess('rgb255')).toThrow('unknown input preprocessing "rgb255" (known: rgb01_imagenet_norm, bgr255_mean_sub)');
  });
});
