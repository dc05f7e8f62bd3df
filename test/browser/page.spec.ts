// The demo page in headless Chromium: WebGPU adapter present (none fails), the example image (128 px wide)
// uploaded through the page and stylized with the default model, the canvas (drawn from the GPU buffer) read
// back and compared with the same model run by the library in Node; strength and colour preservation in the
// render shader against stylizeImage's; the webcam loop; training a small model in the page against the same
// trainer in Node; a screenshot in test-results/browser/page.png.
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL } from '../../src/api/default-model.js';
import { loadModel } from '../../src/api/model-node.js';
import { runImageNetwork } from '../../src/api/tiled.js';
import { stylizeImage, type StylizeOptions } from '../../src/api/stylize.js';
import { toRGBA, type Image } from '../../src/io/image.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { loadLossNetwork } from '../../src/nets/loss-network.js';
import { loadTransformerNet } from '../../src/nets/model-file.js';
import { StyleTrainer } from '../../src/web/style-trainer.js';
import { decodeImage, encodeImage, readImage } from '../../src/io/image-node.js';
import { resize } from '../../src/io/resize.js';
import type { TransformerNet } from '../../src/nets/transformer-net.js';
import { buildWeb } from '../../scripts/build-web.js';
import { serveWeb, type WebServer } from '../../scripts/serve-web.js';
import { useGpu } from '../helpers/gpu.js';
import { randomVgg } from '../helpers/random-vgg.js';
import { chromium } from 'playwright-core';
import { HEADLESS_CHROMIUM_FLAGS } from '../../src/gpu/device.js';
import { CHROMIUM, launchChromium } from './chromium.js';

const SCREENSHOT = resolve('test-results/browser/page.png');
/** The page right after load, before anything is chosen. */
const FIRST_LOOK = resolve('test-results/browser/first-look.png');
const FIXTURE = 'village-128.png';
/** Largest difference allowed between the page's pixels and Node's, in 8-bit steps (two adapters' float rounding). */
const TOLERANCE = 2;

interface Capture {
  width: number;
  height: number;
  rgba: number[];
}

/** Largest and mean absolute difference over the RGB channels of two RGBA byte arrays. */
function rgbDiff(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; mean: number } {
  let max = 0;
  let sum = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    if (i % 4 === 3) continue;
    const d = Math.abs(a[i] - b[i]);
    max = Math.max(max, d);
    sum += d;
    n++;
  }
  return { max, mean: sum / n };
}

describe('demo page in headless Chromium (WebGPU)', () => {
  const gpu = useGpu();
  let server: WebServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  let fixture: Image;
  let png: Uint8Array;
  let net: TransformerNet;

  beforeAll(async () => {
    await buildWeb();
    server = await serveWeb();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1000, height: 640 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && pageErrors.push(m.text()));
    // The fixture: the example image at 128 px wide, as 8-bit PNG (what the page decodes is exactly this).
    const img = await readImage('examples/village.png');
    png = await encodeImage(resize(img, 128, Math.round((128 * img.height) / img.width)), 'png');
    fixture = await decodeImage(png, FIXTURE);
    net = await loadModel(gpu(), DEFAULT_MODEL.url);
  });

  afterAll(async () => {
    net?.dispose();
    await browser?.close();
    await server?.close();
  });

  const waitFor = async (state: string, extra = '') => {
    await page.waitForSelector(`body[data-state="${state}"]${extra}, body[data-state="error"]`, { timeout: 240_000 });
    const status = await page.textContent('#status');
    expect(await page.getAttribute('body', 'data-state'), `page status: ${status}`).toBe(state);
  };
  const capture = () => page.evaluate(() => (window as unknown as { perceptualDemo: { capture(): Capture } }).perceptualDemo.capture());
  const nodeRGBA = async (opts: StylizeOptions) => toRGBA(await stylizeImage(gpu(), net, fixture, opts));

  it('right after load shows the example and its result computed beforehand, then the live result', async () => {
    await page.goto(`${server.url}?size=128`);
    await page.waitForFunction(() => {
      const p = document.getElementById('preview') as HTMLImageElement | null;
      return (p && !p.hidden && p.complete && p.naturalWidth > 0) || document.body.dataset.state === 'error';
    });
    mkdirSync(resolve(FIRST_LOOK, '..'), { recursive: true });
    await page.screenshot({ path: FIRST_LOOK });
    console.log(`first look: ${FIRST_LOOK} (status: ${await page.textContent('#status')})`);
    expect(await page.getAttribute('body', 'data-state')).not.toBe('error');
    expect(await page.evaluate(() => (document.getElementById('input') as HTMLCanvasElement).width)).toBe(128);
    await waitFor('done', '[data-image="village.png"]');
    // The live result replaces the preview.
    expect(await page.evaluate(() => [document.getElementById('preview')!.hidden, document.getElementById('output')!.hidden])).toEqual([true, false]);
  });

  it('without WebGPU flags, headless Chromium is told which ones it needs; the first look is still shown', async () => {
    const plain = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    try {
      const p = await plain.newPage();
      await p.goto(server.url);
      await p.waitForSelector('body[data-state="error"]', { timeout: 60_000 });
      const status = (await p.textContent('#status'))!;
      console.log(`plain headless: ${status}`);
      expect(status).toContain(HEADLESS_CHROMIUM_FLAGS);
      expect(await p.evaluate(() => (document.getElementById('preview') as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
    } finally {
      await plain.close();
    }
  });

  it('has a WebGPU adapter', async () => {
    await page.goto(`${server.url}?size=128&example=0`);
    const info = await page.evaluate(async () => {
      const a = await navigator.gpu?.requestAdapter();
      return a ? { vendor: a.info.vendor, architecture: a.info.architecture, description: a.info.description } : null;
    });
    expect(info, 'navigator.gpu.requestAdapter() returned no adapter').not.toBeNull();
    console.log(`browser adapter: ${JSON.stringify(info)}`);
    await waitFor('ready');
  });

  it('stylizes an uploaded image like the library in Node, drawn from the GPU buffer', async () => {
    await page.setInputFiles('#image-file', { name: FIXTURE, mimeType: 'image/png', buffer: Buffer.from(png) });
    await waitFor('done', `[data-image="${FIXTURE}"]`);

    const shown = await capture();
    expect([shown.width, shown.height]).toEqual([fixture.width, fixture.height]);
    const d = rgbDiff(shown.rgba, await nodeRGBA({}));
    // The network's raw output too (a readback for the test only): how close the two adapters' floats are.
    const raw = await page.evaluate(() =>
      (window as unknown as { perceptualDemo: { readOutput(): Promise<{ data: number[] }> } }).perceptualDemo.readOutput(),
    );
    const ref = (await runImageNetwork(gpu(), net, fixture)).data;
    const rawMax = raw.data.reduce((m, v, i) => Math.max(m, Math.abs(v - ref[i])), 0);
    console.log(`browser vs Node, ${fixture.width}x${fixture.height}: canvas max |diff| ${d.max}/255 (mean ${d.mean.toFixed(3)}), raw output max |diff| ${rawMax.toExponential(2)}`);
    expect(d.max).toBeLessThanOrEqual(TOLERANCE);

    mkdirSync(resolve(SCREENSHOT, '..'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });
    console.log(`screenshot: ${SCREENSHOT}`);
  });

  it('applies strength and colour preservation in the render shader as stylizeImage does', async () => {
    await page.evaluate(() => {
      const s = document.getElementById('strength') as HTMLInputElement;
      s.value = '0.6';
      s.dispatchEvent(new Event('input'));
      (document.getElementById('preserve') as HTMLInputElement).click();
    });
    expect(await page.textContent('#strength-value')).toBe('0.60');
    const d = rgbDiff((await capture()).rgba, await nodeRGBA({ strength: 0.6, preserveColor: true }));
    console.log(`strength 0.6 + preserve colour: canvas max |diff| ${d.max}/255 (mean ${d.mean.toFixed(3)})`);
    expect(d.max).toBeLessThanOrEqual(TOLERANCE);
  });

  it('a multi-style model lists its styles; the blend slider mixes two of them like the library in Node', async () => {
    // A 2-style model (random, width 4) with distinct per-style γ, β, uploaded as the page's own model.
    const { TransformerNet } = await import('../../src/nets/transformer-net.js');
    const { saveTransformerNet } = await import('../../src/nets/model-file.js');
    const two = new TransformerNet(gpu(), { variant: 'pytorch-examples', norm: 'conditional-instance', styles: 2, width: 4, rand: () => Math.random() });
    for (const [k, t] of two.stateDict()) {
      if (t.shape.length !== 2) continue;
      const C = t.shape[1];
      const row = (i: number) => Math.floor(i / C);
      t.assign(gpu().upload(Array.from({ length: t.size }, (_, i) => (k.endsWith('weight') ? [2, 0.3][row(i)] : [1, -1][row(i)])), t.shape));
    }
    const bytes = await saveTransformerNet(two.eval(), { style_info: JSON.stringify([{ name: 'first', title: 'One' }, { name: 'second' }]) });
    await page.setInputFiles('#model-file', { name: 'two.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from(bytes) });
    await page.waitForSelector('#blend-controls:not([hidden])');
    expect(await page.$$eval('#style-a option', (o) => o.map((x) => x.textContent))).toEqual(['first (One)', 'second']);
    await page.evaluate(() => {
      const b = document.getElementById('blend') as HTMLInputElement;
      b.value = '0.5';
      b.dispatchEvent(new Event('change'));
    });
    await page.waitForFunction(() => (document.getElementById('blend-value') as HTMLOutputElement).value === '0.50' && document.body.dataset.state === 'done');
    const raw = await page.evaluate(() => (window as unknown as { perceptualDemo: { readOutput(): Promise<{ data: number[] }> } }).perceptualDemo.readOutput());
    const ref = (await runImageNetwork(gpu(), two, fixture, { style: [0.5, 0.5] })).data;
    const first = (await runImageNetwork(gpu(), two, fixture, { style: 0 })).data;
    const diff = (a: ArrayLike<number>) => raw.data.reduce((m, v, i) => Math.max(m, Math.abs(v - a[i])), 0);
    console.log(`blend 0.5 of two styles, browser vs Node: raw output max |diff| ${diff(ref).toExponential(2)} (style 0 alone differs by ${diff(first).toFixed(1)})`);
    expect(diff(ref)).toBeLessThan(1e-2);
    expect(diff(first)).toBeGreaterThan(100 * Math.max(diff(ref), 1e-4));
    two.dispose();
    // Back to the shipped model for what follows.
    await page.selectOption('#model', { index: 0 });
    await page.waitForFunction(() => document.body.dataset.state === 'done');
  });

  it('stylizes the webcam stream frame after frame and shows the frame rate', async () => {
    // Frames counted from now: the earlier tests ran some already.
    const before = Number(await page.getAttribute('body', 'data-frames'));
    await page.click('#webcam');
    await page.waitForFunction((n) => Number(document.body.dataset.frames) >= n + 3 || document.body.dataset.state === 'error', before, { timeout: 240_000 });
    await waitFor('running');
    const fps = Number(await page.getAttribute('body', 'data-fps'));
    console.log(`webcam: ${await page.textContent('#fps')}`);
    expect(fps).toBeGreaterThan(0);
    expect(await page.textContent('#status')).toMatch(/Stylizing webcam/);
    expect(pageErrors).toEqual([]);
  });

  it('trains a small style model in the page like the trainer in Node, with progress and loss curve', async () => {
    // A loss network file as a user would choose it: VGG-16 up to relu2_2 (random weights keep the file small).
    const weights = writeSafetensors(randomVgg(4, 1));
    const style = await encodeImage(resize(fixture, 48, 36), 'png');
    const [steps, size, width] = [3, 32, 4];
    // A still image instead of the webcam, so the page's frames do not compete with training.
    await page.setInputFiles('#image-file', { name: 'still.png', mimeType: 'image/png', buffer: Buffer.from(png) });
    await waitFor('done', '[data-image="still.png"]');
    await page.click('#train-panel summary');
    await page.setInputFiles('#train-style', { name: 'style.png', mimeType: 'image/png', buffer: Buffer.from(style) });
    await page.setInputFiles('#train-contents', { name: FIXTURE, mimeType: 'image/png', buffer: Buffer.from(png) });
    await page.selectOption('#train-net', 'vgg16');
    await page.setInputFiles('#train-weights', { name: 'vgg16-relu2_2.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from(weights) });
    await page.fill('#train-steps', String(steps));
    await page.fill('#train-size', String(size));
    await page.fill('#train-width', String(width));
    await page.click('#train-start');
    await page.waitForSelector('body[data-train="done"], body[data-train="error"]', { timeout: 240_000 });
    expect(await page.getAttribute('body', 'data-train'), `training: ${await page.textContent('#train-status')}`).toBe('done');
    console.log(`page training: ${await page.textContent('#train-status')}`);
    expect(await page.getAttribute('#train-progress', 'value')).toBe(String(steps));
    expect(await page.locator('#train-plot svg path.series').count()).toBeGreaterThan(0);
    expect(await page.locator('#model option:checked').textContent()).toBe(`trained in the page (${steps} steps)`);

    // The same training in Node: same seed, images and weights, so the first step's losses agree to float
    // rounding (later steps too, loosely: Adam's first steps are sign-like and amplify tiny differences).
    const records = await page.evaluate(() => (window as unknown as { perceptualTraining: { records: Record<string, number>[] } }).perceptualTraining.records);
    const lossNet = await loadLossNetwork(gpu(), 'vgg16', weights);
    const trainer = new StyleTrainer(gpu(), { style: await decodeImage(style), contents: [fixture], lossNet, size, width });
    try {
      for (let i = 0; i < steps; i++) await trainer.trainStep();
      console.log(`losses, page vs Node: ${JSON.stringify(records)} vs ${JSON.stringify(trainer.records)}`);
      expect(records.map((r) => r.step)).toEqual([1, 2, 3]);
      for (const k of ['total', 'content', 'style', 'tv']) {
        expect(Math.abs(records[0][k] - trainer.records[0][k]) / Math.abs(trainer.records[0][k]), k).toBeLessThan(1e-3);
        for (const r of records) expect(Number.isFinite(r[k]), k).toBe(true);
      }
    } finally {
      trainer.dispose();
      lossNet.dispose();
    }

    // The download is a model file loadModel reads, with what it was trained with.
    const href = (await page.getAttribute('#train-download', 'href'))!;
    const bytes = new Uint8Array(await page.evaluate(async (url) => Array.from(new Uint8Array(await (await fetch(url)).arrayBuffer())), href));
    expect(JSON.parse(readSafetensors(bytes).metadata.training)).toMatchObject({ steps, width, size, trainedIn: 'browser' });
    const trained = loadTransformerNet(gpu(), bytes);
    try {
      expect([trained.variant, trained.width]).toEqual(['paper', width]);
    } finally {
      trained.dispose();
    }
    expect(pageErrors).toEqual([]);
  });
});
