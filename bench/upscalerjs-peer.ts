// UpscalerJS (MIT) as the peer of bench/sr-report.ts: the ×4 models users pick today, run through UpscalerJS's own
// code on TF.js's WASM backend. Dev-only, like every bench: the library never imports it.
//
// What runs is the `upscaler` package's Node build minus its one tfjs-node dependency: its `getUpscaler` factory,
// its Node model loader (loadModel.node: the model package's folder → `file://…/models/x4/model.json` →
// tf.loadLayersModel) and its Node image handling (image.node: a tensor input is taken as it is), with TF.js 4.22
// (@tensorflow/tfjs) in place of @tensorflow/tfjs-node, which cannot install here. The one piece added is an IO
// router for file:// URLs (tfjs-node's, which plain TF.js lacks) that reads model.json and its weight shards from
// the model package on disk — no network. Per image, `upscaler.execute(tensor, { output: 'tensor' })` with
// UpscalerJS's defaults does, as for any user: no patching (the whole image in one predict), the model's
// inputRange scaling (RDN models take 0..255 as is; the RRDN 'thick' takes 0..1: ×1/255), predict, clip to the
// outputRange and back to 0..255, trim to scale × the input size. The input is what tf.node.decodeImage or
// tf.browser.fromPixels hands UpscalerJS: an int32 [h, w, 3] tensor of the 8-bit LR image. The result is float
// 0..255, not rounded; the report rounds it like our models' outputs (as a saved 8-bit image holds it).
//
// Backend: 'wasm' with SIMD. TF.js's WASM backend does not use threads in Node (its WASM_HAS_MULTITHREAD_SUPPORT
// flag is false when IS_NODE, tfjs issue 3830), so it runs single-threaded; `threads` reports the count it runs.
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import type { Image } from '../src/io/image.js';

export const UPSCALERJS_MODELS = ['esrgan-slim', 'esrgan-medium', 'esrgan-thick'] as const;
export type UpscalerJsModel = (typeof UPSCALERJS_MODELS)[number];

const require = createRequire(import.meta.url);

/** The model definition a model package exports (the fields read here). */
interface ModelDefinition {
  scale: number;
  modelType: 'layers' | 'graph';
  inputRange?: [number, number];
  outputRange?: [number, number];
  meta?: Record<string, unknown>;
  _internals?: { path: string; name: string; version: string };
}

interface UpscalerInstance {
  ready: Promise<void>;
  execute(input: tf.Tensor, options: { output: 'tensor' }): Promise<tf.Tensor3D>;
  getModel(): Promise<{ model: tf.LayersModel; modelDefinition: ModelDefinition }>;
  dispose(): Promise<void>;
}
type UpscalerClass = new (opts: { model: ModelDefinition }) => UpscalerInstance;

export interface UpscalerJsPeer {
  /** e.g. 'esrgan-thick 4x'. */
  name: string;
  /** The model package and its version. */
  package: string;
  /** Its architecture as the package describes it (rdn / rrdn with C, D, G, G0, T). */
  architecture: string;
  params: number;
  scale: number;
  /** The ×4 SR image of an 8-bit RGB image, 0..255, float (UpscalerJS's output, unrounded). */
  upscale(lr: Image): Promise<Image>;
  dispose(): Promise<void>;
}

export interface UpscalerJsEnv {
  tfjs: string;
  backend: string;
  simd: boolean;
  threads: number;
  upscaler: string;
}

let started: UpscalerJsEnv | undefined;

/** TF.js on its WASM backend, with a file:// IO router. Idempotent. */
export async function startUpscalerJs(): Promise<UpscalerJsEnv> {
  if (started) return started;
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  // The WASM binaries sit beside the backend's Node bundle; the backend finds them there by itself in Node.
  if (!(await tf.setBackend('wasm'))) throw new Error('TF.js: the wasm backend failed to initialise');
  await tf.ready();
  // A router answers null for URLs it does not take (TF.js's IORouter type leaves that out; its own routers do it).
  tf.io.registerLoadRouter((url) => {
    const u = Array.isArray(url) ? url[0] : url;
    return (typeof u === 'string' && u.startsWith('file://') ? fileHandler(fileURLToPath(u)) : null) as tf.io.IOHandler;
  });
  started = {
    tfjs: tf.version.tfjs,
    backend: tf.getBackend(),
    simd: (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) as boolean,
    threads: wasm.getThreadsCount(),
    upscaler: (JSON.parse(readFileSync(join(upscalerDist(), '../../../../package.json'), 'utf8')) as { version: string }).version,
  };
  return started;
}

/** Reads a layers model (model.json and the weight shards it names, relative to it) from disk, as tfjs-node does. */
function fileHandler(modelJsonPath: string): tf.io.IOHandler {
  return {
    load: async () => {
      const json = JSON.parse(readFileSync(modelJsonPath, 'utf8')) as tf.io.ModelJSON;
      return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const buffers: ArrayBuffer[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const p of group.paths) {
            const b = readFileSync(join(dirname(modelJsonPath), p));
            buffers.push(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
          }
        }
        return [specs, tf.io.concatenateArrayBuffers(buffers)];
      });
    },
  };
}

/** dist/node/upscalerjs/src of the installed `upscaler` (its exports map hides the files; absolute paths reach them). */
function upscalerDist(): string {
  return resolve(dirname(require.resolve('upscaler/node')), '../..');
}

let UpscalerCtor: UpscalerClass | undefined;

/** UpscalerJS's Node Upscaler class, built by its own factory with TF.js (WASM) instead of tfjs-node. */
function upscalerClass(): UpscalerClass {
  if (UpscalerCtor) return UpscalerCtor;
  const src = upscalerDist();
  const { getUpscaler } = require(join(src, 'shared/index.js')) as { getUpscaler: (deps: unknown) => UpscalerClass };
  const { getUpscaleOptions } = require(join(src, 'node/args.node.js')) as { getUpscaleOptions: unknown };
  const { loadModel } = require(join(src, 'node/loadModel.node.js')) as { loadModel: unknown };
  const image = require(join(src, 'node/image.node.js')) as { getImageAsTensor: unknown; tensorAsBase64: unknown; checkValidEnvironment: unknown };
  UpscalerCtor = getUpscaler({
    tf,
    getUpscaleOptions,
    loadModel,
    getImageAsTensor: image.getImageAsTensor,
    tensorAsBase64: image.tensorAsBase64,
    checkValidEnvironment: image.checkValidEnvironment,
  });
  return UpscalerCtor;
}

/** An UpscalerJS ×4 model from its npm package, ready to run (call startUpscalerJs first). */
export async function loadUpscalerJs(model: UpscalerJsModel): Promise<UpscalerJsPeer> {
  if (!started) throw new Error('loadUpscalerJs: call startUpscalerJs first');
  const pkg = `@upscalerjs/${model}`;
  const definition = require(`${pkg}/4x`) as ModelDefinition;
  const version = definition._internals?.version ?? '?';
  const Upscaler = upscalerClass();
  const upscaler = new Upscaler({ model: definition });
  await upscaler.ready;
  const { model: layers, modelDefinition } = await upscaler.getModel();
  const m = modelDefinition.meta ?? {};
  const scale = modelDefinition.scale;
  const architecture = `${String(m.architecture)} C${String(m.C)} D${String(m.D)} G${String(m.G)} G0 ${String(m.G0)} T${String(m.T)}`;
  return {
    name: `${model} 4x`,
    package: `${pkg}@${version}`,
    architecture,
    params: layers.countParams(),
    scale,
    async upscale(lr) {
      const { width: w, height: h } = lr;
      const n = w * h;
      // Planar float RGB → interleaved int32 [h, w, 3], the 8-bit values (what decodeImage / fromPixels give).
      const hwc = new Int32Array(3 * n);
      for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) hwc[3 * i + c] = Math.round(lr.data[c * n + i]);
      const input = tf.tensor3d(hwc, [h, w, 3], 'int32');
      let out: tf.Tensor3D;
      try {
        out = await upscaler.execute(input, { output: 'tensor' });
      } finally {
        input.dispose();
      }
      const [H, W] = out.shape;
      const data = await out.data<'float32'>();
      out.dispose();
      if (H !== h * scale || W !== w * scale) throw new Error(`${model}: ${w}x${h} in, ${W}x${H} out`);
      const N = W * H;
      const planar = new Float32Array(3 * N);
      for (let i = 0; i < N; i++) for (let c = 0; c < 3; c++) planar[c * N + i] = data[3 * i + c];
      return { width: W, height: H, data: planar };
    },
    dispose: () => upscaler.dispose(),
  };
}
