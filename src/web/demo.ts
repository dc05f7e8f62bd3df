// The demo page (web/index.html): pick a shipped style model, stylize an image or the webcam in real time.
// Frames go CPU → GPU once (upload); the output is drawn from the GPU buffer to the canvas, never read back.
// Built to dist/web/demo.js; '../browser.js' becomes the library bundle (./perceptual.js) at build time.
// Only the library entry is imported, so the page runs on exactly the published bundle (one copy of the tape).
import { FrameStylizer, Gpu, TensorPresenter, fitSize, grabFrame, loadModel, type Look, type TransformerNet } from '../browser.js';
import { blurredInput, estimateFrameRate, frameCount, recordFrames, playFrames, stylizeFrames, toRGBA, videoFrames } from '../browser.js';
import { el } from './dom.js';
import { setupTrainPanel } from './train-panel.js';

/** An entry of dist/web/models.json (written by scripts/build-web.ts from models/). */
export interface ModelEntry {
  name: string;
  /** Relative to models.json. */
  url: string;
  bytes: number;
  default?: boolean;
  description?: string;
  /** The example image stylized beforehand (scripts/make-previews.ts), relative to models.json: shown at once. */
  preview?: string;
}

type FrameSource = { kind: 'image'; name: string; bitmap: ImageBitmap } | { kind: 'video'; name: string; video: HTMLVideoElement; stream: MediaStream };

const ui = {
  adapter: el<HTMLElement>('adapter'),
  model: el<HTMLSelectElement>('model'),
  modelFile: el<HTMLInputElement>('model-file'),
  imageFile: el<HTMLInputElement>('image-file'),
  webcam: el<HTMLButtonElement>('webcam'),
  size: el<HTMLSelectElement>('size'),
  strength: el<HTMLInputElement>('strength'),
  strengthValue: el<HTMLOutputElement>('strength-value'),
  preserve: el<HTMLInputElement>('preserve'),
  loop: el<HTMLInputElement>('loop'),
  status: el<HTMLElement>('status'),
  fps: el<HTMLElement>('fps'),
  input: el<HTMLCanvasElement>('input'),
  output: el<HTMLCanvasElement>('output'),
  preview: el<HTMLImageElement>('preview'),
  outputCaption: el<HTMLElement>('output-caption'),
  blendControls: el<HTMLElement>('blend-controls'),
  styleA: el<HTMLSelectElement>('style-a'),
  styleB: el<HTMLSelectElement>('style-b'),
  blend: el<HTMLInputElement>('blend'),
  blendValue: el<HTMLOutputElement>('blend-value'),
};

/** Page state for people and for the browser test: loading, ready (no image yet), running, done (a still image
 *  finished), error. */
function setState(state: 'loading' | 'ready' | 'running' | 'done' | 'error', message: string): void {
  document.body.dataset.state = state;
  ui.status.textContent = message;
}

/** The style of a multi-style model: style A, or A and B mixed by the slider (weights 1 − t and t). */
function styleBlend(): number[] | undefined {
  if (ui.blendControls.hidden) return undefined;
  const w = new Array<number>(ui.styleA.options.length).fill(0);
  const t = Number(ui.blend.value);
  w[Number(ui.styleA.value)] += 1 - t;
  w[Number(ui.styleB.value)] += t;
  return w;
}

const look = (): Look => ({ strength: Number(ui.strength.value), preserveColor: ui.preserve.checked, style: styleBlend() });
const STEADY_BLUR = 1.5;
const steady = () => el<HTMLInputElement>('steady').checked;

async function decode(blob: Blob): Promise<ImageBitmap> {
  // The file's stored values, not colour-managed ones: the same pixels a Node decoder gives.
  return createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
}

/** The first look: the example and its result computed beforehand, shown until the live result replaces it (on a
 *  CPU adapter the first live frame takes half a minute). */
const preview = {
  show(url: string): void {
    ui.preview.src = url;
    ui.preview.hidden = false;
    ui.output.hidden = true;
    ui.outputCaption.textContent = 'Stylized beforehand (a preview): the live result replaces it';
  },
  get shown(): boolean {
    return !ui.preview.hidden;
  },
  hide(): void {
    if (ui.preview.hidden) return;
    ui.preview.hidden = true;
    ui.output.hidden = false;
    ui.outputCaption.textContent = 'Stylized: drawn from the GPU buffer, no readback';
  },
};

async function main(): Promise<void> {
  setState('loading', 'Starting WebGPU…');
  // ?size=N sets the largest side; ?example=0 starts without the example image.
  const params = new URLSearchParams(location.search);
  const withExample = params.get('example') !== '0';
  // The models and the example first: the page shows what it does before the GPU starts (or if it cannot).
  const manifestUrl = new URL('./models.json', import.meta.url);
  const models = (await (await fetch(manifestUrl)).json()) as ModelEntry[];
  const first = models.find((m) => m.default) ?? models[0];
  let exampleBitmap: ImageBitmap | null = null;
  if (withExample) {
    exampleBitmap = await decode(await (await fetch(new URL('../../examples/village.png', import.meta.url))).blob());
    const [w, h] = fitSize(exampleBitmap.width, exampleBitmap.height, Number(params.get('size') ?? ui.size.value));
    grabFrame(exampleBitmap, w, h, ui.input);
    if (first?.preview) preview.show(new URL(first.preview, manifestUrl).href);
  }
  const gpu = await Gpu.create();
  const info = gpu.adapterInfo;
  ui.adapter.textContent = `Adapter: ${[info.vendor, info.architecture, info.description].filter(Boolean).join(' · ') || 'unknown'}`;
  const stylizer = new FrameStylizer(gpu, await TensorPresenter.create(gpu, ui.output));

  for (const m of models) ui.model.add(new Option(`${m.name} (${(m.bytes / 1e6).toFixed(1)} MB)`, new URL(m.url, manifestUrl).href, false, !!m.default));
  if (!models.length) throw new Error('no models in models.json (put .safetensors files in models/ and rebuild)');

  let net: TransformerNet | null = null;
  let source: FrameSource | null = null;
  let busy = false;
  let again = false; // a request that came while a frame was running (a new image, size or model)
  let frames = 0;

  const useModel = async (what: string, src: string | ArrayBuffer, file?: string) => {
    setState('loading', `Loading ${what}…`);
    const next = await loadModel(gpu, src, { file });
    net?.dispose();
    net = next;
    // A multi-style model lists its styles; blending two of them is a slider.
    ui.blendControls.hidden = next.styles < 2;
    for (const sel of [ui.styleA, ui.styleB]) {
      sel.replaceChildren(...next.styleInfo.map((st, i) => new Option(st.title ? `${st.name} (${st.title})` : st.name, String(i))));
    }
    ui.styleB.value = String(Math.min(1, next.styles - 1));
    ui.blend.value = '0';
    ui.blendValue.value = '0.00';
    if (!source) setState('ready', `${what} loaded: choose an image or the webcam`);
  };

  const sourceSize = (s: FrameSource): [number, number] =>
    s.kind === 'image' ? [s.bitmap.width, s.bitmap.height] : [s.video.videoWidth, s.video.videoHeight];

  /** One frame of the current source through the page's network (or `using`, a preview) onto the canvas. */
  const step = async (using?: TransformerNet) => {
    if (busy) {
      if (!using) again = true; // a preview is skipped, a change is not
      return;
    }
    const model = using ?? net;
    if (!model || !source) return;
    const [sw, sh] = sourceSize(source);
    if (!sw || !sh) return; // a video without its first frame yet
    busy = true;
    try {
      const [w, h] = fitSize(sw, sh, Number(ui.size.value));
      const image = grabFrame(source.kind === 'image' ? source.bitmap : source.video, w, h, ui.input);
      if (source.kind === 'image' && !using) {
        setState('running', `Stylizing ${source.name} (${w}×${h})…${preview.shown ? ' Shown meanwhile: the same image stylized beforehand.' : ''}`);
      }
      // Video (the webcam): the steadier option blurs each frame a little first (README, "Video").
      await stylizer.run(source.kind === 'video' && steady() ? blurredInput(model, STEADY_BLUR) : model, image, look());
      preview.hide();
      frames++;
      const fps = stylizer.meter.fps;
      ui.fps.textContent = `${w}×${h}: ${stylizer.lastMs.toFixed(0)} ms per frame` + (fps ? `, ${fps.toFixed(1)} fps` : '');
      document.body.dataset.fps = fps.toFixed(2);
      document.body.dataset.frames = String(frames);
      const continuous = source.kind === 'video' || ui.loop.checked;
      if (continuous) setState('running', `Stylizing ${source.name} (${w}×${h})`);
      else if (!using) {
        document.body.dataset.image = source.name;
        setState('done', `Stylized ${source.name} (${w}×${h})`);
      }
    } finally {
      busy = false;
    }
    if (again) {
      again = false;
      await step();
    }
  };

  // Runs while the source is a video or looping is on: one frame in flight, the next at the next display frame.
  let looping = false;
  const loop = async () => {
    if (looping) return;
    looping = true;
    stylizer.meter.reset();
    try {
      while (source && (source.kind === 'video' || ui.loop.checked)) {
        await step();
        await new Promise((r) => requestAnimationFrame(r));
      }
    } finally {
      looping = false;
    }
  };

  const show = async (next: FrameSource) => {
    if (source?.kind === 'video') for (const t of source.stream.getTracks()) t.stop();
    if (source?.kind === 'image') source.bitmap.close();
    source = next;
    stylizer.meter.reset();
    if (next.kind === 'video' || ui.loop.checked) void loop().catch(fail);
    else await step();
  };

  const fail = (e: unknown) => {
    console.error(e);
    setState('error', `Error: ${(e as Error).message ?? e}`);
  };
  const guard = (f: () => Promise<void>) => () => void f().catch(fail);

  ui.model.addEventListener('change', guard(async () => {
    await useModel(ui.model.selectedOptions[0].text, ui.model.value);
    await step();
  }));
  ui.modelFile.addEventListener('change', guard(async () => {
    const f = ui.modelFile.files?.[0];
    if (!f) return;
    await useModel(f.name, await f.arrayBuffer(), f.name);
    await step();
  }));
  ui.imageFile.addEventListener('change', guard(async () => {
    const f = ui.imageFile.files?.[0];
    if (f) await show({ kind: 'image', name: f.name, bitmap: await decode(f) });
  }));
  ui.webcam.addEventListener('click', guard(async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    const video = document.createElement('video');
    video.muted = true;
    video.playsInline = true;
    video.srcObject = stream;
    await video.play();
    await show({ kind: 'video', name: 'webcam', video, stream });
  }));
  ui.size.addEventListener('change', guard(() => step()));
  ui.loop.addEventListener('change', guard(async () => {
    if (ui.loop.checked) await loop();
  }));
  setupTrainPanel(gpu, {
    preview: (m) => step(m),
    adopt: async (m, name, url) => {
      net?.dispose();
      net = m;
      ui.model.add(new Option(name, url, true, true));
      await step();
    },
    fail: (e) => console.error(e),
  });

  // A video file: every frame stylized (seeked one by one), then played at its rate and recorded (src/web/video.ts).
  const vui = { file: el<HTMLInputElement>('video-file'), play: el<HTMLButtonElement>('video-play'), link: el<HTMLAnchorElement>('video-download'), status: el<HTMLElement>('video-status'), canvas: el<HTMLCanvasElement>('video-output') };
  let clip: { frames: ImageBitmap[]; fps: number } | null = null;
  const videoState = (state: string, message: string) => ((document.body.dataset.video = state), (vui.status.textContent = message));
  vui.file.addEventListener('change', guard(async () => {
    const f = vui.file.files?.[0];
    if (!f || !net) return;
    vui.play.disabled = true;
    vui.link.hidden = true;
    clip?.frames.forEach((b) => b.close());
    const video = Object.assign(document.createElement('video'), { muted: true, playsInline: true, preload: 'auto', src: URL.createObjectURL(f) });
    await new Promise((res, rej) => ((video.onloadeddata = res), (video.onerror = () => rej(new Error(`cannot decode ${f.name}`)))));
    const fps = await estimateFrameRate(video);
    const [w, h] = fitSize(video.videoWidth, video.videoHeight, Number(ui.size.value));
    const total = frameCount(video.duration, fps);
    Object.assign(vui.canvas, { width: w, height: h });
    const frames: ImageBitmap[] = [];
    videoState('running', `${f.name}: 0/${total} frames`);
    for await (const out of stylizeFrames(gpu, net, videoFrames(video, fps, w, h, { frames: total }), { batch: 2, blur: steady() ? STEADY_BLUR : 0, ...look() })) {
      frames.push(await createImageBitmap(new ImageData(toRGBA(out) as Uint8ClampedArray<ArrayBuffer>, w, h)));
      vui.canvas.getContext('2d')!.drawImage(frames.at(-1)!, 0, 0);
      videoState('running', `${f.name}: ${frames.length}/${total} frames (${w}×${h}, ${fps.toFixed(2)} fps)`);
    }
    URL.revokeObjectURL(video.src);
    clip = { frames, fps };
    videoState('recording', `${f.name}: recording ${frames.length} frames…`);
    Object.assign(vui.link, { href: URL.createObjectURL(await recordFrames(vui.canvas, frames, fps)), download: `${f.name.replace(/\.[^.]+$/, '')}-stylized.webm`, hidden: false });
    vui.play.disabled = false;
    document.body.dataset.videoFrames = String(frames.length);
    videoState('done', `${f.name}: ${frames.length} frames stylized (${w}×${h}, ${fps.toFixed(2)} fps)`);
  }));
  vui.play.addEventListener('click', guard(async () => void (clip && (await playFrames(vui.canvas, clip.frames, clip.fps)))));

  const restyle = () => {
    ui.strengthValue.value = Number(ui.strength.value).toFixed(2);
    stylizer.redraw(look()); // no network run: the shader blends input and output
  };
  ui.strength.addEventListener('input', restyle);
  ui.preserve.addEventListener('change', restyle);
  // Another style or blend changes the network's γ, β: a new run.
  const rerun = guard(async () => {
    ui.blendValue.value = Number(ui.blend.value).toFixed(2);
    await step();
  });
  for (const c of [ui.styleA, ui.styleB]) c.addEventListener('change', rerun);
  ui.blend.addEventListener('change', rerun);
  ui.blend.addEventListener('input', () => (ui.blendValue.value = Number(ui.blend.value).toFixed(2)));

  // Hooks for the browser test (test/browser): a readback of the canvas and of the output tensor.
  Object.assign(window, {
    perceptualDemo: {
      adapter: info,
      /** The output canvas's pixels, drawn again and copied in the same task (before the frame is presented). */
      capture(): { width: number; height: number; rgba: number[] } {
        stylizer.redraw(look());
        const { width, height } = ui.output;
        const c = new OffscreenCanvas(width, height);
        const ctx = c.getContext('2d')!;
        ctx.drawImage(ui.output, 0, 0);
        return { width, height, rgba: Array.from(ctx.getImageData(0, 0, width, height).data) };
      },
      async readOutput() {
        const o = await stylizer.readOutput();
        return o && { width: o.width, height: o.height, data: Array.from(o.data) };
      },
    },
  });

  const size = params.get('size');
  if (size) {
    if (![...ui.size.options].some((o) => o.value === size)) ui.size.add(new Option(size));
    ui.size.value = size;
  }
  await useModel(ui.model.selectedOptions[0]?.text ?? 'model', ui.model.value);
  if (exampleBitmap) await show({ kind: 'image', name: 'village.png', bitmap: exampleBitmap });
}

main().catch((e) => {
  console.error(e);
  setState('error', `Error: ${(e as Error).message ?? e}`);
});
