// TF.js's WebGPU backend as the peer engine of bench/compare.ts, running on OUR GPUDevice: one Dawn instance,
// one adapter, one device and queue for both engines, so the comparison differs only in the kernels and the
// framework around them. TF.js is a dev-dependency used by the benches only; the library never imports it.
//
// Layouts: our tensors are NCHW with OIHW conv weights (PyTorch's); TF.js is NHWC with HWIO conv filters and
// HWOI (height, width, out, in) transposed-conv filters. The converters below run on the CPU, outside timing.
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { Gpu } from '../src/gpu/index.js';

export { tf };

export interface Peer {
  backend: WebGPUBackend;
  /** Submits TF.js's recorded commands and waits until the device has finished them. */
  sync(): Promise<void>;
  /** Moves a tensor's data to the GPU now (so that uploads stay outside timed regions). */
  upload(...ts: tf.Tensor[]): void;
  dispose(): void;
}

/** Registers TF.js's 'webgpu' backend on gpu's device and makes it the current backend. */
export async function startPeer(gpu: Gpu): Promise<Peer> {
  // TF.js decides that WebGPU exists by looking at navigator.gpu (Node 20 has no navigator): point it at
  // our adapter; the backend itself is handed our device below and never asks for another one.
  const g = globalThis as { navigator?: { gpu?: unknown } };
  const hadNavigator = g.navigator !== undefined;
  g.navigator ??= {};
  const hadGpu = g.navigator.gpu !== undefined;
  g.navigator.gpu ??= { requestAdapter: async () => gpu.adapter };
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  // The package registers a factory that requests its own device at import; ours replaces it.
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => new WebGPUBackend(gpu.device, gpu.adapter.info));
  if (!(await tf.setBackend('webgpu'))) throw new Error('TF.js: the webgpu backend failed to initialise');
  await tf.ready();
  const backend = tf.backend() as WebGPUBackend;
  return {
    backend,
    async sync() {
      // What backend.getBufferData does before reading: an encoder (submitQueue needs one), the open pass ended.
      backend.ensureCommandEncoderReady();
      backend.endComputePassEncoder();
      backend.submitQueue();
      await gpu.device.queue.onSubmittedWorkDone();
    },
    upload(...ts) {
      for (const t of ts) backend.uploadToGPU(t.dataId);
    },
    dispose() {
      tf.removeBackend('webgpu');
      if (!hadGpu) delete g.navigator!.gpu;
      if (!hadNavigator) delete g.navigator;
    },
  };
}

let gradientsLoaded = false;

/**
 * Registers TF.js's gradient functions. The union package @tensorflow/tfjs does that; tfjs-core's bundles do not
 * contain them, and its ES module tree (dist/register_all_gradients.js) uses directory imports that Node cannot
 * resolve, so esbuild bundles it into a temporary module. The copy of tfjs-core internals it brings registers
 * into the same global gradient registry and runs on the same global engine.
 */
export async function loadGradients(): Promise<void> {
  if (gradientsLoaded) return;
  const { build } = await import('esbuild');
  const require = createRequire(import.meta.url);
  const entry = join(dirname(require.resolve('@tensorflow/tfjs-core/package.json')), 'dist', 'register_all_gradients.js');
  const out = await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', write: false, logLevel: 'error' });
  const file = join(tmpdir(), `tfjs-gradients-${process.pid}.mjs`);
  writeFileSync(file, out.outputFiles[0].text);
  try {
    await import(pathToFileURL(file).href);
  } finally {
    rmSync(file, { force: true });
  }
  if (!tf.getGradient('AddN')) throw new Error('TF.js gradients did not register');
  gradientsLoaded = true;
}

/** Permutes a dense array of `shape` so that output axis i is input axis perm[i]. */
export function permute(data: Float32Array, shape: readonly number[], perm: readonly number[]): Float32Array {
  const n = shape.length;
  const inStride = new Array<number>(n);
  for (let i = n - 1, s = 1; i >= 0; s *= shape[i], i--) inStride[i] = s;
  const outShape = perm.map((p) => shape[p]);
  const out = new Float32Array(data.length);
  const idx = new Array<number>(n).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let i = 0; i < n; i++) src += idx[i] * inStride[perm[i]];
    out[o] = data[src];
    for (let i = n - 1; i >= 0 && ++idx[i] === outShape[i]; i--) idx[i] = 0;
  }
  return out;
}

/** NCHW data → a TF.js NHWC tensor. */
export const nhwcTensor = (data: Float32Array, [N, C, H, W]: readonly number[]): tf.Tensor4D =>
  tf.tensor4d(permute(data, [N, C, H, W], [0, 2, 3, 1]), [N, H, W, C]);

/** A TF.js NHWC tensor's values in NCHW order. */
export async function nchwData(t: tf.Tensor): Promise<Float32Array> {
  const [N, H, W, C] = t.shape;
  return permute((await t.data()) as Float32Array, [N, H, W, C], [0, 3, 1, 2]);
}

/** conv2d weight [out, in, kH, kW] → TF.js filter [kH, kW, in, out]. */
export const convFilter = (w: Float32Array, [O, I, kH, kW]: readonly number[]): tf.Tensor4D =>
  tf.tensor4d(permute(w, [O, I, kH, kW], [2, 3, 1, 0]), [kH, kW, I, O]);

/** conv_transpose2d weight [in, out, kH, kW] → TF.js conv2dTranspose filter [kH, kW, out, in]. */
export const convTransposeFilter = (w: Float32Array, [I, O, kH, kW]: readonly number[]): tf.Tensor4D =>
  tf.tensor4d(permute(w, [I, O, kH, kW], [2, 3, 1, 0]), [kH, kW, O, I]);

/** ||a − b|| / ||b|| in float64. */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relL2: ${a.length} vs ${b.length} values`);
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return Math.sqrt(d / Math.max(n, 1e-30));
}
