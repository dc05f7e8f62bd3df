// Video as a stream of frames (browser-safe): stylizeFrames runs a network over an async iterable of frames in
// batches on the GPU and yields the stylized frames in order, holding at most one batch; files and their decoding
// are the caller's (video-node.ts: ffmpeg in Node; the demo page: <video> and a canvas).
// Inference-time stabilisation, measured for issue #18 (bench/video-stability.ts, README "Video"): `blur` (each frame
// blurred slightly before the network, so less sensor noise reaches the strokes) lowers the warping error by ~10 % at
// σ = 1.5 px for ~5 % more style loss, so it is an option; TemporalNorm (instance-norm statistics carried across frames
// as a moving average) changed it by less than 0.3 % either way, so nothing offers it: it stays for the benchmark.
import { noGrad, tidy, Tensor } from '../autograd/tensor.js';
import { GpuMemoryError, type Gpu, type RawTensor } from '../gpu/index.js';
import { groupsOf, normApply, normCoef, normStats } from '../kernels/norm.js';
import { temporalNormScan } from '../kernels/temporal-norm.js';
import { imageToTensor, tensorToImages, type Image } from '../io/image.js';
import { ConditionalInstanceNorm2d, mixRows } from '../layers/norm.js';
import { gaussianBlur2d } from '../layers/resize.js';
import { centerCrop2d } from '../layers/spatial.js';
import { walk, type NormPoint } from '../nets/blocks.js';
import { padToMultiple, type StyleBlend, type TransformerNet } from '../nets/transformer-net.js';
import { transferLuminance } from './stylize.js';
import { runImageNetwork, type ImageNetwork } from './tiled.js';

export interface FrameOptions {
  /** Frames run through the network together (default 4): instance norm is per frame, so results equal one by one. */
  batch?: number;
  /** As stylizeImage: keep the content's colours; blend with the content (0..1). */
  preserveColor?: boolean;
  strength?: number;
  /** Multi-style networks: the style index or blend. */
  style?: StyleBlend;
  /** Blur each frame by a Gaussian of σ = `blur` px before the network (0: off): steadier, a little less detailed. */
  blur?: number;
  /** Stops after the batch in progress; the frames done so far have been yielded. */
  signal?: AbortSignal;
}

/** `net` on frames blurred by a Gaussian of σ px first (edges replicated): sensor noise makes fewer new strokes. */
export function blurredInput(net: ImageNetwork, sigma: number): ImageNetwork {
  if (!(sigma > 0 && Number.isFinite(sigma))) throw new Error(`blurredInput: sigma must be a positive number of pixels, got ${sigma}`);
  return { forward: (x, o) => net.forward(gaussianBlur2d(x, sigma), o) };
}

/** stylizeImage's look on a stylized frame (in place). */
function applyLook(out: Image, content: Image, preserveColor: boolean, strength: number): Image {
  const img = preserveColor ? transferLuminance(out, content) : out;
  const d = img.data;
  for (let i = 0; i < d.length; i++) d[i] = Math.min(255, Math.max(0, strength * d[i] + (1 - strength) * content.data[i]));
  return img;
}

/**
 * Stylizes a stream of frames, batch by batch, in order. A batch that does not fit the device is halved; a single
 * frame that does not fit runs in tiles (runImageNetwork). Memory holds one batch, whatever the stream's length.
 */
export async function* stylizeFrames(gpu: Gpu, net: ImageNetwork, frames: AsyncIterable<Image> | Iterable<Image>, opts: FrameOptions = {}): AsyncGenerator<Image> {
  const strength = opts.strength ?? 1;
  if (!(strength >= 0 && strength <= 1)) throw new Error(`stylizeFrames: strength must be between 0 and 1, got ${opts.strength}`);
  if (opts.blur) net = blurredInput(net, opts.blur);
  let batch = opts.batch ?? 4;
  if (!(Number.isInteger(batch) && batch >= 1)) throw new Error(`stylizeFrames: batch must be a positive integer, got ${opts.batch}`);
  const run = async function* (images: Image[]): AsyncGenerator<Image> {
    for (let i = 0; i < images.length; ) {
      const part = images.slice(i, i + batch);
      let outs: Image[];
      try {
        if (part.length === 1 && batch === 1) outs = [await runImageNetwork(gpu, net, part[0], { style: opts.style })];
        else {
          const y = noGrad(() => tidy(() => net.forward(imageToTensor(gpu, part), { style: opts.style })));
          try {
            outs = await tensorToImages(y);
          } finally {
            y.dispose();
          }
        }
      } catch (e) {
        if (!(e instanceof GpuMemoryError) || batch === 1) throw e;
        batch = Math.max(1, batch >> 1);
        continue;
      }
      for (const [k, o] of outs.entries()) yield applyLook(o, part[k], opts.preserveColor ?? false, strength);
      i += part.length;
    }
  };
  let pending: Image[] = [];
  for await (const f of frames) {
    if (opts.signal?.aborted) return;
    // A change of size starts a new batch (a batch is one tensor).
    if (pending.length && (f.width !== pending[0].width || f.height !== pending[0].height)) {
      yield* run(pending);
      pending = [];
      if (opts.signal?.aborted) return;
    }
    pending.push(f);
    if (pending.length >= batch) {
      yield* run(pending);
      pending = [];
    }
  }
  if (pending.length && !opts.signal?.aborted) yield* run(pending);
}

export interface TemporalNormOptions {
  /** Weight of the newest frame in each instance norm's running statistics, 0 < α ≤ 1 (1: per-frame, as without). */
  alpha?: number;
}

/**
 * A style network whose instance norms normalise with statistics averaged over the frames seen so far (an
 * exponential moving average per norm and channel, kept on the GPU) instead of each frame's own: frames of one
 * scene then share one normalisation, so the strokes do not re-tune themselves to every frame's noise. Stateful:
 * feed it the frames in order (batches of consecutive frames), and `reset()` at a cut or a new video.
 */
export class TemporalNorm implements ImageNetwork {
  readonly alpha: number;
  private state = new Map<object, RawTensor>();

  constructor(
    readonly net: TransformerNet,
    opts: TemporalNormOptions = {},
  ) {
    this.alpha = opts.alpha ?? 0.1;
    if (!(this.alpha > 0 && this.alpha <= 1)) throw new Error(`TemporalNorm: alpha must be in (0, 1], got ${opts.alpha}`);
    if (net.norm === 'batch') throw new Error('TemporalNorm: the network uses batch norm (fixed statistics); there is nothing to carry across frames');
  }

  /** Forgets the running statistics (the next frame starts them afresh). */
  reset(): void {
    for (const s of this.state.values()) this.net.gpu.release(s);
    this.state.clear();
  }

  /** RGB 0..255 [N,3,H,W], N consecutive frames → stylized [N,3,H,W] (no gradients; inference only). */
  forward(x: Tensor, opts: { style?: StyleBlend } = {}): Tensor {
    const gpu = this.net.gpu;
    return noGrad(() => {
      const { y: padded, padH, padW } = padToMultiple(x, 4);
      const { rows, ctx } = this.net.plan(opts);
      try {
        const it = walk(rows, padded, ctx, true);
        let r = it.next();
        while (!r.done) {
          const p: NormPoint = r.value;
          r = it.next(tidy(() => this.normalize(gpu, p, ctx.style)));
        }
        const h = r.value;
        if (!padH && !padW) return h;
        const y = centerCrop2d(h, [0, padW, 0, padH]);
        h.dispose();
        return y;
      } finally {
        ctx.style?.dispose();
        if (padded !== x) padded.dispose();
      }
    });
  }

  private normalize(gpu: Gpu, p: NormPoint, style: Tensor | undefined): Tensor {
    const { norm, x } = p;
    const [N, C] = x.shape;
    const q = groupsOf(x.shape, false);
    let state = this.state.get(norm);
    const fresh = !state;
    if (!state) this.state.set(norm, (state = gpu.zeros([2, C], 'temporalNorm state')));
    const s = normStats(gpu, x.raw, q);
    const avg = temporalNormScan(gpu, s.mean, s.var, state, N, this.alpha, fresh);
    gpu.release(s.mean);
    gpu.release(s.var);
    const cond = norm instanceof ConditionalInstanceNorm2d;
    const w = norm.weight && (cond ? mixRows(norm.weight, style!) : norm.weight);
    const b = norm.bias && (cond ? mixRows(norm.bias, style!) : norm.bias);
    const coef = normCoef(gpu, avg.mean, avg.var, w?.raw ?? null, b?.raw ?? null, q, norm.eps);
    gpu.release(avg.mean);
    gpu.release(avg.var);
    const y = normApply(gpu, x.raw, coef, q, 'temporalNorm');
    gpu.release(coef);
    return new Tensor(gpu, y);
  }

  dispose(): void {
    this.reset();
  }
}
