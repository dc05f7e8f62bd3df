// Temporal stability of video stylization (issue #18), measured where the motion is known exactly.
//
// Clips are made from still photos (shared/data/content; never committed) by a virtual camera: a pan, a zoom, a
// small rotation — frame t is the photo seen through the map V_t (frame pixel → photo pixel), so frame t+1 is frame t
// warped by M = V_t⁻¹ ∘ V_{t+1} wherever M lands inside frame t (what enters the frame is masked out) — and a static
// camera with fresh sensor noise on every frame (M = identity). One real clip: OpenCV's sample vtest.avi (a static
// surveillance camera, people walking; Debian's opencv-doc package ships it): M = identity over the pixels whose
// input hardly changes (the moving people are masked out).
//
// Warping error of a clip: the mean over frame pairs, visible pixels and channels of (S_{t+1} − M(S_t))², S the
// stylized frames on a 0..1 scale, ×1000 in the table. The "input" row is the same measure on the input frames: the
// floor bilinear resampling and noise leave even for a perfectly stable result. Style fidelity: the style loss
// (Gram matrices on SqueezeNet 1.1, the loss the model was trained with) and the content loss of the stylized
// frames, averaged over all clips.
//
//   npx tsx bench/video-stability.ts [--size 256] [--frames 8] [--alpha 0.5,0.2,0.05] [--blur 0.7] [--model NAME=FILE]...
//       [--real FILE] [--photos DIR] [--fps] [--strip docs/video-strip] [--json bench/results/video-....json]
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { noGrad, tidy, Tensor } from '../src/autograd/tensor.js';
import { DEFAULT_MODEL } from '../src/api/default-model.js';
import { loadModel } from '../src/api/model-node.js';
import { stylizeImage } from '../src/api/stylize.js';
import { readVideo, scaledSize } from '../src/api/video-node.js';
import { stylizeFrames, TemporalNorm } from '../src/api/video.js';
import type { ImageNetwork } from '../src/api/tiled.js';
import { Gpu } from '../src/gpu/index.js';
import { createImage, crop, imageToTensor, tensorToImages, type Image } from '../src/io/image.js';
import { readImage, writeImage } from '../src/io/image-node.js';
import { resize, resizeShorterSide } from '../src/io/resize.js';
import { gaussianBlur2d } from '../src/layers/resize.js';
import { affineAbout, affineWarp, composeAffine, IDENTITY, invertAffine, warpMask, type Affine, type Motion } from '../src/layers/warp.js';
import { loadLossNetwork } from '../src/nets/loss-network-node.js';
import type { TransformerNet } from '../src/nets/transformer-net.js';
import { StyleTransferLoss } from '../src/train/perceptual-loss.js';
import { Rng } from '../src/train/rng.js';

const { values: args } = parseArgs({
  options: {
    size: { type: 'string', default: '256' },
    frames: { type: 'string', default: '8' },
    alpha: { type: 'string', default: '0.5,0.2,0.05' },
    blur: { type: 'string', default: '' },
    clips: { type: 'string' },
    model: { type: 'string', multiple: true },
    real: { type: 'string', default: '/usr/share/doc/opencv-doc/examples/data/vtest.avi' },
    photos: { type: 'string', default: '../shared/data/content' },
    style: { type: 'string', default: '../shared/data/styles/starry_night_crop.jpg' },
    weights: { type: 'string', default: '../shared/weights/squeezenet1_1.safetensors' },
    fps: { type: 'boolean', default: false },
    strip: { type: 'string' },
    json: { type: 'string' },
  },
});

const SIZE = Number(args.size);
const T = Number(args.frames);
const NOISE = 4; // σ of the static camera's sensor noise, in 0..255 units

interface Clip {
  name: string;
  frames: Image[];
  /** For each pair (t, t+1): the map of frame t+1's pixels into frame t, and the pixels to compare (1/0). */
  pairs: { map: Affine; mask: Float32Array }[];
  /** A perfectly stable stylization, where one exists: the photo stylized once and filmed by the same camera. */
  ideal?: Image[];
}

/** A virtual camera over a photo: frame t shows the photo through V_t = C_photo ∘ motion^t ∘ C_frame⁻¹. */
async function cameraClip(gpu: Gpu, net: ImageNetwork, name: string, photo: Image, step: Motion): Promise<Clip> {
  const W = Math.round((SIZE * 16) / 9);
  const H = SIZE;
  // The photo at 1.3× the frame's size covers every view of the clip (the motions stay within that margin).
  const s = 1.3 * Math.max(W / photo.width, H / photo.height);
  const src = resize(photo, Math.round(photo.width * s), Math.round(photo.height * s));
  // V_t = shift to the photo's centre ∘ motion^t (about the origin) ∘ shift from the frame's centre.
  const one = affineAbout(0, 0, step);
  const view = (t: number): Affine => {
    let m = IDENTITY;
    for (let i = 0; i < t; i++) m = composeAffine(m, one);
    return composeAffine(composeAffine([1, 0, (src.width - 1) / 2, 0, 1, (src.height - 1) / 2], m), [1, 0, -(W - 1) / 2, 0, 1, -(H - 1) / 2]);
  };
  const film = async (img: Image) => {
    const x = imageToTensor(gpu, img);
    const out: Image[] = [];
    for (let t = 0; t < T; t++) {
      const y = noGrad(() => affineWarp(x, view(t), { size: [H, W], padding: 'border' }));
      out.push((await tensorToImages(y))[0]);
      y.dispose();
    }
    x.dispose();
    return out;
  };
  const frames = await film(src);
  const ideal = await film(await stylizeImage(gpu, net, src));
  const pairs = frames.slice(1).map((_, t) => {
    const map = composeAffine(invertAffine(view(t)), view(t + 1));
    return { map, mask: warpMask(map, H, W) };
  });
  return { name, frames, pairs, ideal };
}

function noiseClip(name: string, photo: Image): Clip {
  const W = Math.round((SIZE * 16) / 9);
  const base = resize(resizeShorterSide(photo, SIZE), Math.round((photo.width * SIZE) / photo.height), SIZE);
  const crop = createImage(W, SIZE);
  const x0 = Math.floor((base.width - W) / 2);
  for (let c = 0; c < 3; c++) for (let y = 0; y < SIZE; y++) crop.data.set(base.data.subarray((c * SIZE + y) * base.width + x0, (c * SIZE + y) * base.width + x0 + W), (c * SIZE + y) * W);
  const rng = new Rng(7);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const frames = Array.from({ length: T }, () => createImage(W, SIZE, crop.data.map((v) => Math.min(255, Math.max(0, v + NOISE * gauss())))));
  const mask = new Float32Array(W * SIZE).fill(1);
  return { name, frames, pairs: frames.slice(1).map(() => ({ map: IDENTITY, mask })) };
}

/** The real clip: frames `from`.. of a static camera; compared where the input changes by less than 12/255. */
async function realClip(path: string): Promise<Clip | null> {
  if (!existsSync(path)) return null;
  const frames: Image[] = [];
  let i = 0;
  const from = 100;
  for await (const f of readVideo(path, { size: scaledSize({ width: 768, height: 576 }, SIZE) })) {
    if (i++ < from) continue;
    frames.push(f);
    if (frames.length === T) break;
  }
  const pairs = frames.slice(1).map((next, t) => {
    const prev = frames[t];
    const n = next.width * next.height;
    const mask = new Float32Array(n);
    for (let p = 0; p < n; p++) {
      const d = (Math.abs(next.data[p] - prev.data[p]) + Math.abs(next.data[n + p] - prev.data[n + p]) + Math.abs(next.data[2 * n + p] - prev.data[2 * n + p])) / 3;
      mask[p] = d < 12 ? 1 : 0;
    }
    return { map: IDENTITY, mask };
  });
  return { name: 'real: vtest.avi (static camera)', frames, pairs };
}

/** Mean over pairs of the masked mean squared difference between S_{t+1} and S_t warped, on a 0..1 scale. */
async function warpingError(gpu: Gpu, clip: Clip, out: Image[]): Promise<number> {
  let total = 0;
  for (const [t, { map, mask }] of clip.pairs.entries()) {
    const warped = noGrad(() => tidy(() => affineWarp(imageToTensor(gpu, out[t]), map)));
    const w = (await tensorToImages(warped))[0];
    warped.dispose();
    const next = out[t + 1];
    const n = next.width * next.height;
    let s = 0;
    let m = 0;
    for (let p = 0; p < n; p++) {
      if (!mask[p]) continue;
      m++;
      for (let c = 0; c < 3; c++) s += ((next.data[c * n + p] - w.data[c * n + p]) / 255) ** 2;
    }
    total += s / (3 * Math.max(m, 1));
  }
  return total / clip.pairs.length;
}

async function collect(it: AsyncIterable<Image>): Promise<Image[]> {
  const out: Image[] = [];
  for await (const f of it) out.push(f);
  return out;
}

/** Heat map of |a − b| (mean over channels) ×8, as an RGB image: what flickers between two frames. */
function diffImage(a: Image, b: Image, mask?: Float32Array): Image {
  const n = a.width * a.height;
  const out = createImage(a.width, a.height);
  for (let p = 0; p < n; p++) {
    const d = mask && !mask[p] ? 0 : Math.min(255, (8 * (Math.abs(a.data[p] - b.data[p]) + Math.abs(a.data[n + p] - b.data[n + p]) + Math.abs(a.data[2 * n + p] - b.data[2 * n + p]))) / 3);
    out.data[p] = d;
    out.data[n + p] = d * 0.6;
    out.data[2 * n + p] = mask && !mask[p] ? 60 : 0;
  }
  return out;
}

function grid(rows: Image[][], gap = 4): Image {
  const w = rows[0][0].width;
  const h = rows[0][0].height;
  const cols = Math.max(...rows.map((r) => r.length));
  const W = cols * w + (cols - 1) * gap;
  const H = rows.length * h + (rows.length - 1) * gap;
  const out = createImage(W, H, new Float32Array(3 * W * H).fill(255));
  rows.forEach((r, i) =>
    r.forEach((img, j) => {
      for (let c = 0; c < 3; c++)
        for (let y = 0; y < h; y++) out.data.set(img.data.subarray((c * h + y) * w, (c * h + y + 1) * w), (c * H + i * (h + gap) + y) * W + j * (w + gap));
    }),
  );
  return out;
}

async function main(): Promise<void> {
  const gpu = await Gpu.create();
  const net = await loadModel(gpu, fileURLToPath(DEFAULT_MODEL.url));
  const models: { name: string; net: TransformerNet }[] = [{ name: DEFAULT_MODEL.name, net }];
  for (const m of args.model ?? []) {
    const [name, file] = m.includes('=') ? m.split('=') : [m, m];
    models.push({ name, net: await loadModel(gpu, file) });
  }
  const alphas = args.alpha ? args.alpha.split(',').map(Number) : [];
  const blurs = args.blur ? args.blur.split(',').map(Number) : [];
  // Every way of stylizing a clip: per frame (the baseline), each α of carried statistics, other models.
  const variants: { name: string; make: () => ImageNetwork }[] = [
    { name: 'per frame (baseline)', make: () => net },
    ...alphas.map((a) => ({ name: `IN statistics carried, α = ${a}`, make: () => new TemporalNorm(net, { alpha: a }) })),
    // Each frame blurred a little before the network: less of the sensor noise reaches the strokes.
    ...blurs.map((s) => ({ name: `input blurred, σ = ${s} px`, make: (): ImageNetwork => ({ forward: (x, o) => net.forward(gaussianBlur2d(x, s), o) }) })),
    ...models.slice(1).map((m) => ({ name: `model ${m.name}`, make: () => m.net })),
  ];

  const photo = (f: string) => readImage(join(args.photos!, f));
  console.error('making the clips…');
  const clips: Clip[] = [
    await cameraClip(gpu, net, 'pan (3 px/frame)', await photo('chicago.jpg'), { dx: 3, dy: 0.5 }),
    await cameraClip(gpu, net, 'zoom (1 %/frame)', await photo('tubingen.jpg'), { scale: 1 / 1.01 }),
    await cameraClip(gpu, net, 'rotation (0.5°/frame)', await photo('golden_gate.jpg'), { angle: (0.5 * Math.PI) / 180 }),
    await cameraClip(gpu, net, 'handheld (pan + zoom + roll)', await photo('stata.jpg'), { dx: -1.5, dy: 1, scale: 1.004, angle: (-0.3 * Math.PI) / 180 }),
    noiseClip(`static camera, noise σ = ${NOISE}`, await photo('sailboat.jpg')),
  ];
  const real = await realClip(args.real!);
  if (real) clips.push(real);
  else console.error(`no real clip: ${args.real} not found (Debian: apt-get install opencv-doc)`);
  // --clips static,real: only the clips whose names start so (e.g. to redraw the strips).
  const only = args.clips?.split(',');
  if (only) clips.splice(0, clips.length, ...clips.filter((c) => only.some((o) => c.name.startsWith(o))));

  const style = await readImage(args.style!);
  const lossNet = await loadLossNetwork(gpu, 'squeezenet1_1', args.weights!);
  const styleLoss = new StyleTransferLoss(lossNet, imageToTensor(gpu, resizeShorterSide(style, SIZE)));

  const table: Record<string, Record<string, number>> = {};
  const fidelity: Record<string, { style: number; content: number }> = {};
  const outputs: Record<string, Image[][]> = {};
  table.input = {};
  for (const c of clips) table.input[c.name] = await warpingError(gpu, c, c.frames);
  // The floor of a stylized texture under bilinear resampling: what a perfectly stable result would score.
  const IDEAL = 'ideal: the photo stylized once, filmed by the same camera';
  table[IDEAL] = {};
  for (const c of clips) if (c.ideal) table[IDEAL][c.name] = await warpingError(gpu, c, c.ideal);
  for (const v of variants) {
    table[v.name] = {};
    outputs[v.name] = [];
    let st = 0;
    let ct = 0;
    let n = 0;
    for (const c of clips) {
      const t0 = performance.now();
      const out = await collect(stylizeFrames(gpu, v.make(), c.frames, { batch: 4 }));
      table[v.name][c.name] = await warpingError(gpu, c, out);
      outputs[v.name].push(out);
      for (const [i, o] of out.entries()) {
        const terms = noGrad(() => tidy(() => {
          const r = styleLoss.compute(imageToTensor(gpu, o), imageToTensor(gpu, c.frames[i]));
          return { s: r.style, c: r.content };
        }));
        st += (await terms.s.data())[0];
        ct += (await terms.c.data())[0];
        terms.s.dispose();
        terms.c.dispose();
        n++;
      }
      console.error(`${v.name} | ${c.name}: ${(1000 * table[v.name][c.name]).toFixed(3)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
    fidelity[v.name] = { style: st / n, content: ct / n };
  }

  // The table: ×1000 warping error per clip; mean relative change against the baseline.
  const names = clips.map((c) => c.name);
  const base = table['per frame (baseline)'];
  console.log(`\nwarping error ×1000 (0..1 scale), ${T} frames per clip at ${SIZE}p (${Math.round((SIZE * 16) / 9)}×${SIZE}; real clip ${scaledSize({ width: 768, height: 576 }, SIZE).join('×')})\n`);
  console.log(`| | ${names.join(' | ')} | vs baseline | style loss | content loss |`);
  console.log(`|---|${names.map(() => '---:').join('|')}|---:|---:|---:|`);
  for (const [k, row] of Object.entries(table)) {
    const rel = k === 'input' || k === IDEAL ? '' : `${(100 * (names.reduce((s, c) => s + row[c] / base[c], 0) / names.length - 1)).toFixed(1)} %`;
    const f = fidelity[k];
    console.log(`| ${k} | ${names.map((c) => (row[c] === undefined ? '–' : (1000 * row[c]).toFixed(3))).join(' | ')} | ${rel} | ${f ? f.style.toFixed(3) : ''} | ${f ? f.content.toFixed(2) : ''} |`);
  }

  let fps: Record<string, number> | undefined;
  if (args.fps) {
    fps = {};
    for (const [label, W, H] of [['480p', 854, 480], ['256p', 456, 256]] as const) {
      const frames = Array.from({ length: 4 }, (_, i) => resize(clips[0].frames[i % clips[0].frames.length], W, H));
      await collect(stylizeFrames(gpu, net, frames.slice(0, 1), { batch: 1 })); // warm-up: pipelines
      const t0 = performance.now();
      await collect(stylizeFrames(gpu, net, frames, { batch: 4 }));
      fps[label] = (frames.length * 1000) / (performance.now() - t0);
      console.log(`${label} (${W}×${H}): ${fps[label].toFixed(3)} fps (${(1 / fps[label]).toFixed(2)} s per frame), batch 4, ${gpu.adapterInfo.description || gpu.adapterInfo.vendor}`);
    }
  }

  if (args.strip) {
    // Five consecutive frames of the static clips (noise, real), a 192×128 crop of the centre: the input, then for
    // each variant its frames and what changed from the frame before, |S_t − S_t−1| ×8 (blue: masked, moving).
    const cut = (img: Image) => crop(img, Math.floor((img.width - 192) / 2), Math.floor((img.height - 128) / 2), 192, 128);
    for (const [tag, prefix] of [['noise', 'static'], ['real', 'real']] as const) {
      const k = clips.findIndex((c) => c.name.startsWith(prefix));
      if (k < 0) continue;
      const c = clips[k];
      const flicker = (out: Image[]) => out.slice(0, 5).map((o, t) => cut(t === 0 ? createImage(o.width, o.height) : diffImage(o, out[t - 1], c.pairs[t - 1].mask)));
      const rows: Image[][] = [c.frames.slice(0, 5).map(cut)];
      for (const v of variants) rows.push(outputs[v.name][k].slice(0, 5).map(cut), flicker(outputs[v.name][k]));
      const file = `${args.strip}-${tag}.png`;
      mkdirSync(dirname(file), { recursive: true });
      await writeImage(file, grid(rows));
      console.log(`strip: ${file} (rows: input, then per variant its frames and |S_t − S_t−1| ×8: ${variants.map((v) => v.name).join('; ')})`);
    }
  }

  if (args.json) {
    mkdirSync(dirname(args.json), { recursive: true });
    const json = {
      what: 'warping error (mean squared difference on a 0..1 scale between stylized frame t+1 and stylized frame t warped by the true motion, visible pixels only), per clip',
      adapter: gpu.adapterInfo,
      size: SIZE,
      framesPerClip: T,
      noiseSigma: NOISE,
      model: DEFAULT_MODEL.name,
      clips: names,
      warpingError: table,
      fidelity,
      fps,
      date: new Date().toISOString(),
    };
    writeFileSync(args.json, JSON.stringify(json, null, 2) + '\n');
    console.log(`json: ${args.json}`);
  }
  styleLoss.dispose();
  lossNet.dispose();
  for (const m of models) m.net.dispose();
  gpu.destroy();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
