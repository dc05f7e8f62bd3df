// The browser bundles, built in-process with the build script's own options: nothing Node-only reaches them,
// `perceptual-webgpu/browser` exports the root's product API minus what needs files, the engine's browser build
// shares its modules and exports everything browser-safe, the demo runs on the library bundle (not on a second
// copy), and the guard really rejects a Node-only import. Also the cut between the product API and the engine.
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as esbuild from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL, DEFAULT_SR_MODEL } from '../src/api/default-model.js';
import { readSafetensors } from '../src/io/safetensors.js';
import * as core from '../src/core.js';
import * as nodeEngine from '../src/engine.js';
import * as nodeEntry from '../src/index.js';
import { OUT_DIR, ROOT, demoBuild, libraryBuild, modelManifest, nodeOnlyGuard } from '../scripts/build-web.js';

/** What only the Node root has: image files, training runs that write checkpoints, evaluation on folders, downloads. */
const NODE_ONLY = [
  'readImage', 'writeImage', 'decodeImage', 'encodeImage', 'ImageFileError', 'trainStyle', 'trainSR', 'TrainingStoppedError',
  'evaluateSrFolder', 'fetchWeights', 'defaultCacheDir', 'DownloadError', 'ChecksumError', 'ZOO_NAMES',
  'stylizeVideo', 'probeVideo', 'readVideo', 'VideoWriter', 'VideoFileError',
];
/** What only the browser entry has: canvas and frame helpers. */
const WEB_ONLY = ['TensorPresenter', 'FrameStylizer', 'FpsMeter', 'StyleTrainer', 'fitSize', 'grabFrame', 'estimateFrameRate', 'frameCount', 'videoFrames', 'playFrames', 'recordFrames'];

type Output = esbuild.Metafile['outputs'][string];

async function build(opts: esbuild.BuildOptions) {
  const r = await esbuild.build({ ...opts, write: false });
  const outputs = Object.entries(r.metafile!.outputs).filter(([p]) => p.endsWith('.js'));
  const entry = (file: string): Output => outputs.find(([, o]) => o.entryPoint === file)![1];
  const text = (path: string) => r.outputFiles!.find((f) => f.path === resolve(ROOT, path))!.text;
  return { outputs, entry, text };
}

describe('browser bundle', () => {
  let lib: Awaited<ReturnType<typeof build>>;
  let browser: Output;
  let engine: Output;
  beforeAll(async () => {
    lib = await build(libraryBuild());
    browser = lib.entry('src/browser.ts');
    engine = lib.entry('src/engine-browser.ts');
  });

  it('imports nothing but its own chunks: no node:, sharp or webgpu module, no require', () => {
    const chunks = lib.outputs.filter(([, o]) => !o.entryPoint).map(([p]) => p);
    expect(chunks).toHaveLength(1);
    for (const [path, o] of lib.outputs) {
      expect(o.imports.every((i) => chunks.includes(i.path) && !i.external), path).toBe(true);
      const text = lib.text(path);
      expect(text).not.toMatch(/\bfrom\s*["'](node:|sharp|webgpu)/);
      expect(text).not.toMatch(/\bimport\s*\(\s*["'](node:|sharp|webgpu|\.)/);
      expect(text).not.toMatch(/\brequire\s*\(/);
      const inputs = Object.keys(o.inputs);
      for (const nodeFile of ['src/io/files.ts', 'src/io/image-node.ts', 'src/io/fetch.ts', 'src/train/trainer.ts']) expect(inputs).not.toContain(nodeFile);
    }
    // Both entries load the same chunk: one Tensor class, one tape, one buffer pool per device.
    expect(browser.imports.map((i) => i.path)).toEqual(chunks);
    expect(engine.imports.map((i) => i.path)).toEqual(chunks);
  });

  it("exports the root's product API except files, training runs and downloads, plus the canvas helpers", () => {
    for (const name of ['Gpu', 'loadModel', 'loadLossNetwork', 'stylizeImage', 'upscaleImage', 'DEFAULT_MODEL', 'TensorPresenter', 'StyleTrainer']) {
      expect(browser.exports).toContain(name);
    }
    const expected = Object.keys(nodeEntry).filter((k) => !NODE_ONLY.includes(k));
    expect(browser.exports.filter((k) => !WEB_ONLY.includes(k)).sort()).toEqual(expected.sort());
    for (const k of NODE_ONLY) expect(Object.keys(nodeEntry), `${k} is no longer exported by src/index.ts`).toContain(k);
  });

  it('the engine subpath has everything: the building blocks and the product API, in Node and in the browser', () => {
    const root = Object.keys(nodeEntry);
    const blocks = Object.keys(core);
    for (const k of ['kernel', 'Tensor', 'record', 'conv2d', 'readPth', 'bicubicContributions']) {
      expect(blocks).toContain(k);
      expect(root, `${k} is an engine building block, not product API`).not.toContain(k);
    }
    expect(Object.keys(nodeEngine)).toEqual(expect.arrayContaining([...root, ...blocks, 'train', 'saveCheckpoint', 'ImageFolder']));
    expect(engine.exports).toEqual(expect.arrayContaining([...browser.exports, ...blocks]));
  });

  it('the demo script loads the library bundle instead of bundling a second copy', async () => {
    const demo = (await build(demoBuild())).entry('src/web/demo.ts');
    expect(new Set(demo.imports.map((i) => `${i.path} ${i.kind} ${i.external}`))).toEqual(new Set(['./perceptual.js import-statement true']));
    expect(Object.keys(demo.inputs).sort()).toEqual(['src/web/demo.ts', 'src/web/dom.ts', 'src/web/train-panel.ts']);
  });

  it('fails the build on a Node-only import, naming it', async () => {
    for (const spec of ['node:fs', 'fs/promises', 'sharp', 'webgpu', './src/io/image-node.js']) {
      const stdin = { contents: `import * as m from '${spec}'; console.log(m);`, resolveDir: ROOT, loader: 'ts' as const };
      await expect(esbuild.build({ stdin, bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent', plugins: [nodeOnlyGuard()] }), spec).rejects.toThrow(
        /Node-only module ".+" \(imported by .+\) must not reach the browser bundle/,
      );
    }
  });

  it('lists every shipped style model for the demo (not the SR model), the default first, by URLs relative to the bundle', async () => {
    const files = readdirSync(join(ROOT, 'models')).filter((f) => f.endsWith('.safetensors'));
    const arch = (f: string) => readSafetensors(new Uint8Array(readFileSync(join(ROOT, 'models', f)))).metadata.arch;
    const shipped = files.filter((f) => arch(f) === 'transformer-net');
    expect(files.filter((f) => arch(f) === 'sr-net')).toEqual([`${DEFAULT_SR_MODEL.name}.safetensors`]);
    const manifest = await modelManifest();
    expect(manifest.map((m) => `${m.name}.safetensors`).sort()).toEqual(shipped.sort());
    expect(manifest[0]).toMatchObject({ name: DEFAULT_MODEL.name, default: true });
    for (const m of manifest) expect(resolve(OUT_DIR, m.url)).toBe(join(ROOT, 'models', `${m.name}.safetensors`));
  });
});
