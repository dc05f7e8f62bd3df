// The browser bundle, built in-process with the build script's own options: nothing Node-only reaches it, it
// exports the Node entry's API minus what needs files, the demo runs on it (not on a second copy), and the guard
// really rejects a Node-only import.
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as esbuild from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL } from '../src/api/default-model.js';
import * as nodeEntry from '../src/index.js';
import { OUT_DIR, ROOT, demoBuild, libraryBuild, modelManifest, nodeOnlyGuard } from '../scripts/build-web.js';

/** What only the Node entry has: file and image-file IO, datasets, and training runs that write checkpoints. */
const NODE_ONLY = [
  'train', 'TrainingStoppedError', 'saveCheckpoint', 'loadCheckpoint', 'CheckpointError', 'ImageFolder', 'listImages',
  'trainStyle', 'readImage', 'writeImage', 'decodeImage', 'encodeImage', 'ImageFileError',
  'trainSR', 'makeLowRes', 'SR_LOSSES', 'SR_DEFAULT_TV_WEIGHT', 'LOW_RES_BLUR_SIGMA',
];
/** What only the browser entry has: canvas and frame helpers. */
const WEB_ONLY = ['TensorPresenter', 'FrameStylizer', 'FpsMeter', 'StyleTrainer', 'fitSize', 'grabFrame'];

async function build(opts: esbuild.BuildOptions) {
  const r = await esbuild.build({ ...opts, write: false });
  const [path, meta] = Object.entries(r.metafile!.outputs).find(([p]) => p.endsWith('.js'))!;
  const text = r.outputFiles!.find((f) => f.path === resolve(ROOT, path))!.text;
  return { meta, text };
}

describe('browser bundle', () => {
  let lib: Awaited<ReturnType<typeof build>>;
  beforeAll(async () => {
    lib = await build(libraryBuild());
  });

  it('imports nothing: no node:, sharp or webgpu module, no require', () => {
    expect(lib.meta.imports).toEqual([]);
    expect(lib.text).not.toMatch(/\bfrom\s*["'](node:|sharp|webgpu)/);
    expect(lib.text).not.toMatch(/\bimport\s*\(\s*["'](node:|sharp|webgpu|\.)/);
    expect(lib.text).not.toMatch(/\brequire\s*\(/);
    const inputs = Object.keys(lib.meta.inputs);
    for (const nodeFile of ['src/io/files.ts', 'src/io/image-node.ts', 'src/io/fetch.ts', 'src/train/trainer.ts']) expect(inputs).not.toContain(nodeFile);
  });

  it("exports the Node entry's API except file IO and training runs, plus the canvas helpers", () => {
    for (const name of ['Gpu', 'Tensor', 'loadModel', 'loadLossNetwork', 'stylizeImage', 'TransformerNet', 'readSafetensors', 'DEFAULT_MODEL', 'TensorPresenter']) {
      expect(lib.meta.exports).toContain(name);
    }
    const expected = Object.keys(nodeEntry).filter((k) => !NODE_ONLY.includes(k));
    expect(lib.meta.exports.filter((k) => !WEB_ONLY.includes(k)).sort()).toEqual(expected.sort());
    for (const k of NODE_ONLY) expect(Object.keys(nodeEntry), `${k} is no longer exported by src/index.ts`).toContain(k);
  });

  it('the demo script loads the library bundle instead of bundling a second copy', async () => {
    const demo = await build(demoBuild());
    expect(new Set(demo.meta.imports.map((i) => `${i.path} ${i.kind} ${i.external}`))).toEqual(new Set(['./perceptual.js import-statement true']));
    expect(Object.keys(demo.meta.inputs).sort()).toEqual(['src/web/demo.ts', 'src/web/dom.ts', 'src/web/train-panel.ts']);
  });

  it('fails the build on a Node-only import, naming it', async () => {
    for (const spec of ['node:fs', 'fs/promises', 'sharp', 'webgpu', './src/io/image-node.js']) {
      const stdin = { contents: `import * as m from '${spec}'; console.log(m);`, resolveDir: ROOT, loader: 'ts' as const };
      await expect(esbuild.build({ stdin, bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent', plugins: [nodeOnlyGuard()] }), spec).rejects.toThrow(
        /Node-only module ".+" \(imported by .+\) must not reach the browser bundle/,
      );
    }
  });

  it('lists every shipped model for the demo, the default first, by URLs relative to the bundle', async () => {
    const shipped = readdirSync(join(ROOT, 'models')).filter((f) => f.endsWith('.safetensors'));
    const manifest = await modelManifest();
    expect(manifest.map((m) => `${m.name}.safetensors`).sort()).toEqual(shipped.sort());
    expect(manifest[0]).toMatchObject({ name: DEFAULT_MODEL.name, default: true });
    for (const m of manifest) expect(resolve(OUT_DIR, m.url)).toBe(join(ROOT, 'models', `${m.name}.safetensors`));
  });
});
