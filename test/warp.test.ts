// The affine bilinear warp (forward, and its gather-form gradient) and the warp-consistency loss of video training,
// against float64 references written from the definitions (test/reference/warp.ts), themselves checked by finite
// differences.
import { describe, expect, it } from 'vitest';
import { Tensor, tidy } from '../src/autograd/tensor.js';
import { affineAbout, affineWarp, composeAffine, IDENTITY, invertAffine, warpConsistency, warpMask, type Affine } from '../src/layers/warp.js';
import { useGpu } from './helpers/gpu.js';
import { checkOp, expectClose, input } from './helpers/opcheck.js';
import { consistencyRef, warpRef } from './reference/warp.js';

const gpu = useGpu();

describe('affine maps', () => {
  it('compose, invert and motions about a point', () => {
    const m = affineAbout(10, 5, { dx: 1.5, dy: -2, scale: 1.1, angle: 0.2 });
    const back = composeAffine(invertAffine(m), m);
    back.forEach((v, i) => expect(v).toBeCloseTo(IDENTITY[i], 12));
    // The centre moves by exactly the shift.
    expect(m[0] * 10 + m[1] * 5 + m[2]).toBeCloseTo(11.5, 12);
    expect(m[3] * 10 + m[4] * 5 + m[5]).toBeCloseTo(3, 12);
    expect(() => invertAffine([0, 0, 1, 0, 0, 1])).toThrow('not invertible');
  });

  it('the mask marks the pixels whose sample point lies inside the source', () => {
    expect(Array.from(warpMask([1, 0, 1, 0, 1, 0], 2, 3))).toEqual([1, 1, 0, 1, 1, 0]);
    expect(Array.from(warpMask([1, 0, -0.5, 0, 1, 0.5], 2, 2))).toEqual([0, 1, 0, 0]);
  });
});

describe('affineWarp', () => {
  // [shape, maps (one per sample), output size]: identity, fractional shifts, rotation + zoom about the centre,
  // shrink to another output size, a large shift that leaves most pixels outside, widths beyond one workgroup.
  const CASES: [number[], Affine[], [number, number] | undefined][] = [
    [[1, 1, 4, 5], [IDENTITY], undefined],
    [[2, 3, 7, 9], [[1, 0, 0.3, 0, 1, -0.7], [1, 0, -1.25, 0, 1, 0.5]], undefined],
    [[2, 2, 9, 11], [affineAbout(5, 4, { angle: 0.05, scale: 1.03, dx: 0.4 }), affineAbout(5, 4, { angle: -0.3, scale: 0.9, dy: 1.3 })], undefined],
    [[1, 3, 12, 16], [[1.9, 0.1, 0.2, -0.05, 2.1, 0.4]], [6, 7]],
    [[1, 2, 6, 6], [[1, 0, 4.5, 0, 1, -3.2]], undefined],
    [[1, 1, 3, 70], [affineAbout(35, 1, { dx: 2.6, scale: 1.01 })], [4, 67]],
  ];
  for (const [k, [shape, maps, size]] of CASES.entries()) {
    it(`forward and gradient on ${JSON.stringify(shape)} → ${size ? JSON.stringify(size) : 'same size'}`, async () => {
      const [Ho, Wo] = size ?? [shape[2], shape[3]];
      const r = warpRef(shape, maps, Ho, Wo);
      await checkOp(gpu(), {
        name: `affineWarp ${shape}`,
        inputs: [input(shape, 70 + k, 3)],
        gpu: ([x]) => affineWarp(x, maps, { size }),
        ref: ([x]) => r.ref(x),
        vjp: ([x], dy) => [r.vjp(x, dy)],
      });
    });
  }

  it('identity copies; border padding clamps sample points into the source', async () => {
    const shape = [1, 2, 5, 6];
    const x = input(shape, 3, 10).data;
    const maps: Affine[] = [affineAbout(3, 2, { angle: 0.4, scale: 1.5, dx: 2 })];
    const { same, border } = tidy(() => {
      const t = Tensor.from(gpu(), Float32Array.from(x), shape);
      return { same: affineWarp(t, IDENTITY), border: affineWarp(t, maps, { padding: 'border' }) };
    });
    expect(Array.from(await same.data())).toEqual(Array.from(Float32Array.from(x)));
    expectClose(await border.data(), warpRef(shape, maps, 5, 6, true).ref(x).y, 1e-5, 'border');
    same.dispose();
    border.dispose();
  });

  it('refuses what it cannot do, naming the op and shapes', () => {
    const x = Tensor.zeros(gpu(), [2, 3, 4, 4], true);
    expect(() => affineWarp(x, [IDENTITY])).toThrow('affineWarp: one map per sample (2) or one for all, got 1; x [2,3,4,4]');
    expect(() => affineWarp(x, IDENTITY, { padding: 'border' })).toThrow("affineWarp: padding 'border' has no backward");
    x.dispose();
  });
});

describe('warpConsistency (the stability loss)', () => {
  const CASES: [number[], Affine[]][] = [
    [[1, 3, 6, 7], [affineAbout(3, 2.5, { dx: 0.6, dy: -0.3 })]],
    [[2, 3, 9, 8], [affineAbout(3.5, 4, { angle: 0.04, scale: 1.02, dx: -1.2 }), affineAbout(3.5, 4, { scale: 0.97, dy: 0.8 })]],
  ];
  for (const [k, [shape, maps]] of CASES.entries()) {
    it(`loss and both gradients on ${JSON.stringify(shape)}`, async () => {
      const r = consistencyRef(shape, maps);
      await checkOp(gpu(), {
        name: `warpConsistency ${shape}`,
        inputs: [input(shape, 90 + k, 50), input(shape, 95 + k, 50)],
        gpu: ([a, b]) => warpConsistency(a, b, maps),
        ref: ([a, b]) => r.ref(a, b),
        vjp: ([a, b], dy) => r.vjp(a, b, dy[0]),
        fdStep: 1e-4,
      });
    });
  }
});
