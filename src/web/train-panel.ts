// The demo page's training panel: a style model trained in the page (StyleTrainer) with a progress bar, the loss
// curves, a preview every few steps through the page's renderer, and the result as the page's model and as a
// download. The loss network's weights come from a file the user chooses (e.g. `perceptual weights fetch`'s).
import { StyleTrainer, grabFrame, loadLossNetwork, type Gpu, type Image, type LossNetwork, type TransformerNet } from '../browser.js';
import { el } from './dom.js';

export interface TrainPanelHooks {
  /** Shows the current source through `net` (not adopting it). */
  preview(net: TransformerNet): Promise<void>;
  /** Makes `net` the page's model (the page owns it from then on); `url` loads it again. */
  adopt(net: TransformerNet, name: string, url: string): Promise<void>;
  fail(e: unknown): void;
}

const PREVIEW_EVERY = 10;

async function imageOf(file: File): Promise<Image> {
  const bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  try {
    return grabFrame(bitmap, bitmap.width, bitmap.height);
  } finally {
    bitmap.close();
  }
}

/** Training state for people and for the browser test: body[data-train] idle | running | done | error. */
function setTrainState(state: 'running' | 'done' | 'error', message: string): void {
  document.body.dataset.train = state;
  el('train-status').textContent = message;
}

export function setupTrainPanel(gpu: Gpu, hooks: TrainPanelHooks): void {
  const ui = {
    style: el<HTMLInputElement>('train-style'),
    contents: el<HTMLInputElement>('train-contents'),
    net: el<HTMLSelectElement>('train-net'),
    weights: el<HTMLInputElement>('train-weights'),
    steps: el<HTMLInputElement>('train-steps'),
    size: el<HTMLInputElement>('train-size'),
    width: el<HTMLInputElement>('train-width'),
    styleWeight: el<HTMLInputElement>('train-style-weight'),
    start: el<HTMLButtonElement>('train-start'),
    stop: el<HTMLButtonElement>('train-stop'),
    download: el<HTMLAnchorElement>('train-download'),
    progress: el<HTMLProgressElement>('train-progress'),
    plot: el<HTMLElement>('train-plot'),
  };
  let stopRequested = false;

  const run = async () => {
    const styleFile = ui.style.files?.[0];
    const contentFiles = [...(ui.contents.files ?? [])];
    const weightsFile = ui.weights.files?.[0];
    if (!styleFile || !contentFiles.length || !weightsFile) throw new Error('choose a style image, content images and the loss network weights');
    const steps = Number(ui.steps.value);
    setTrainState('running', 'Loading…');
    ui.start.disabled = true;
    ui.stop.disabled = false;
    ui.download.hidden = true;
    stopRequested = false;
    let lossNet: LossNetwork | null = null;
    let trainer: StyleTrainer | null = null;
    try {
      lossNet = await loadLossNetwork(gpu, ui.net.value as 'vgg16' | 'squeezenet1_1', await weightsFile.arrayBuffer(), { file: weightsFile.name });
      trainer = new StyleTrainer(gpu, {
        style: await imageOf(styleFile),
        contents: await Promise.all(contentFiles.map(imageOf)),
        lossNet,
        size: Number(ui.size.value),
        width: Number(ui.width.value),
        styleWeight: Number(ui.styleWeight.value),
      });
      // The browser test reads the loss records (one per step) here.
      Object.assign(window, { perceptualTraining: { records: trainer.records } });
      ui.progress.max = steps;
      const t0 = performance.now();
      while (trainer.step < steps && !stopRequested) {
        const r = await trainer.trainStep();
        const perStep = (performance.now() - t0) / 1000 / r.step;
        ui.progress.value = r.step;
        document.body.dataset.trainStep = String(r.step);
        setTrainState('running', `step ${r.step}/${steps} · ${perStep.toFixed(2)} s/step · loss ${r.total.toPrecision(4)} (content ${r.content.toPrecision(3)}, style ${r.style.toPrecision(3)})`);
        ui.plot.innerHTML = trainer.plot({ width: 560, height: 260 });
        if (r.step % PREVIEW_EVERY === 0) await hooks.preview(trainer.model);
      }
      const bytes = await trainer.save();
      const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }));
      ui.download.href = url;
      ui.download.download = `style-${trainer.step}-steps.safetensors`;
      ui.download.hidden = false;
      const name = `trained in the page (${trainer.step} steps)`;
      trainer.dispose(true);
      const model = trainer.model;
      trainer = null;
      await hooks.adopt(model, name, url);
      setTrainState('done', `${name}: now the page's model`);
    } finally {
      trainer?.dispose();
      lossNet?.dispose();
      ui.start.disabled = false;
      ui.stop.disabled = true;
    }
  };

  ui.start.addEventListener('click', () =>
    void run().catch((e) => {
      setTrainState('error', `Error: ${(e as Error).message ?? e}`);
      hooks.fail(e);
    }),
  );
  ui.stop.addEventListener('click', () => {
    stopRequested = true;
  });
}
