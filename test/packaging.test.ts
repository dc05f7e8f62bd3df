// The package as a user meets it: `npm pack` (which builds dist/ through `prepare`), the tarball installed into a
// fresh project that has neither tsx nor TypeScript, then used four ways — plain node importing the library, the
// `perceptual` bin through npx, a strict TypeScript consumer of the installed types, and an esbuild browser bundle
// of `perceptual-webgpu/browser`. Dependencies come from npm's cache when it has them (warm after `npm ci`).
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as esbuild from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readImage } from '../src/io/image-node.js';

const execFileP = promisify(execFile);
const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; exports: Record<string, unknown> };
const VILLAGE = join(ROOT, 'examples/village.png');
const TSC = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin/tsc');

/** npm without the calling npm's lifecycle variables (`npm test` sets them), so it acts as in a user's shell. */
function npm(args: string[], cwd: string, timeout = 240_000) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_(lifecycle|package|config_(argv|dry_run|global))/i.test(k)));
  return execFileP('npm', args, { cwd, env, timeout, maxBuffer: 64 << 20 });
}

const node = (args: string[], cwd: string) => execFileP(process.execPath, args, { cwd, timeout: 120_000 });

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string; size: number }[];
}

describe('the npm package', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-pack-'));
  const app = join(dir, 'app');
  let pack: PackResult;
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  beforeAll(async () => {
    const { stdout } = await npm(['pack', '--json', '--pack-destination', dir], ROOT);
    [pack] = JSON.parse(stdout) as PackResult[];
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }, null, 2));
    await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, pack.filename)], app);
    console.log(`packaging: ${pack.filename} ${pack.size} B packed, ${pack.unpackedSize} B unpacked, ${pack.files.length} files`);
  }, 300_000);

  it('holds the build, the bin, the models, README and LICENSE; no test, bench, docs, CI or source file', () => {
    const paths = pack.files.map((f) => f.path);
    for (const p of ['package.json', 'README.md', 'LICENSE', 'bin/perceptual.js', 'models/four-styles-w16.safetensors', 'models/sr-x4-pixel-w32.safetensors', 'dist/cli/main.js']) {
      expect(paths).toContain(p);
    }
    expect(paths.filter((p) => /^(test|bench|docs|\.ci|src|scripts|web|examples)\//.test(p) || /^(tsconfig|vitest)/.test(p))).toEqual([]);
    expect(paths.filter((p) => /^dist\/web\/(demo|models\.json)/.test(p))).toEqual([]);
    // Every target of the exports map is in it.
    const targets = (v: unknown): string[] => (typeof v === 'string' ? [v.slice(2)] : Object.values(v as object).flatMap(targets));
    for (const t of targets(PKG.exports).filter((t) => !t.includes('*'))) expect(paths, t).toContain(t);
  });

  it('installs its runtime dependencies, and neither tsx, TypeScript nor esbuild', () => {
    const nm = join(app, 'node_modules');
    for (const dep of ['perceptual-webgpu', 'webgpu', 'sharp', 'fflate', 'wgsl_reflect', '@webgpu/types']) expect(existsSync(join(nm, dep)), dep).toBe(true);
    for (const dev of ['tsx', 'typescript', 'esbuild', 'vitest']) expect(existsSync(join(nm, dev)), dev).toBe(false);
  });

  it('plain node imports it, stylizes the example with the embedded model, and exits by itself', async () => {
    writeFileSync(
      join(app, 'stylize.mjs'),
      `import { DEFAULT_MODEL, Gpu, loadModel, readImage, stylizeImage, writeImage } from '${PKG.name}';
const [input, output] = process.argv.slice(2);
const gpu = await Gpu.create();
const net = await loadModel(gpu, DEFAULT_MODEL.url);
const img = await readImage(input);
await writeImage(output, await stylizeImage(gpu, net, img));
net.dispose();
gpu.destroy();
console.log(img.width + 'x' + img.height);
`,
    );
    const { stdout } = await node(['stylize.mjs', VILLAGE, 'out.png'], app);
    expect(stdout.trim()).toBe('512x384');
    const [a, b] = [await readImage(VILLAGE), await readImage(join(app, 'out.png'))];
    expect([b.width, b.height]).toEqual([a.width, a.height]);
    let diff = 0;
    for (let i = 0; i < a.data.length; i++) diff += Math.abs(a.data[i] - b.data[i]);
    expect(diff / a.data.length, 'stylized, not copied').toBeGreaterThan(10);

    // The subpaths: the root is the product API, the engine has the building blocks.
    const probe = `const root = await import('${PKG.name}'), engine = await import('${PKG.name}/engine');
console.log(JSON.stringify({ root: Object.keys(root), engine: Object.keys(engine), version: (await import('${PKG.name}/package.json', { with: { type: 'json' } })).default.version }));`;
    const r = JSON.parse((await node(['--input-type=module', '-e', probe], app)).stdout) as { root: string[]; engine: string[]; version: string };
    expect(r.version).toBe(PKG.version);
    for (const k of ['Gpu', 'loadModel', 'stylizeImage', 'trainStyle', 'trainSR', 'upscaleImage', 'evaluateSrFolder', 'fetchWeights']) expect(r.root).toContain(k);
    for (const k of ['kernel', 'Tensor', 'record', 'conv2d', 'readPth', 'bicubicContributions']) expect(r.root).not.toContain(k);
    for (const k of [...r.root, 'kernel', 'Tensor', 'tidy', 'conv2d', 'Module', 'Adam', 'train', 'readSafetensors']) expect(r.engine).toContain(k);
  });

  it('npx perceptual runs the compiled CLI from the project', async () => {
    const { stdout } = await npm(['exec', '--no', '--', 'perceptual', 'stylize', VILLAGE, '--out', 'styled'], app);
    expect(stdout).toMatch(/village\.png → styled\/village\.png \(512×384/);
    expect(existsSync(join(app, 'styled/village.png'))).toBe(true);
    expect((await npm(['exec', '--no', '--', 'perceptual', '--version'], app)).stdout.trim()).toBe(PKG.version);
    const bad = await npm(['exec', '--no', '--', 'perceptual', 'stylize', '--bogus'], app).catch((e) => e);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('usage: perceptual stylize');
  });

  it('a strict TypeScript consumer type-checks against the installed types (Node and browser)', async () => {
    const strict = { strict: true, skipLibCheck: false, noEmit: true, target: 'ES2022', lib: ['ES2022', 'DOM'], types: [] as string[] };
    writeFileSync(
      join(app, 'node-app.ts'),
      `import { DEFAULT_MODEL, Gpu, loadModel, readImage, stylizeImage, trainStyle, writeImage, type Image, type StylizeOptions, type TrainProgress } from '${PKG.name}';
import { Tensor, conv2d, relu, tidy } from '${PKG.name}/engine';
// @ts-expect-error engine internals are not part of the root
import { kernel } from '${PKG.name}';

export async function main(input: string, output: string): Promise<number> {
  const gpu: Gpu = await Gpu.create();
  const net = await loadModel(gpu, DEFAULT_MODEL.url);
  const img: Image = await readImage(input);
  const opts: StylizeOptions = { strength: 0.8, preserveColor: true };
  await writeImage(output, await stylizeImage(gpu, net, img, opts));
  const onProgress = (p: TrainProgress): string => \`\${p.step}/\${p.steps}\`;
  const y = tidy(() => relu(conv2d(Tensor.from(gpu, new Float32Array(27), [1, 3, 3, 3]), Tensor.from(gpu, new Float32Array(27), [1, 3, 3, 3]), null)));
  const sum = (await y.data()).reduce((a, b) => a + b, 0);
  gpu.destroy();
  return typeof trainStyle === 'function' && onProgress.length === 1 && kernel === undefined ? sum : -1;
}
`,
    );
    writeFileSync(
      join(app, 'web-app.ts'),
      `import { DEFAULT_MODEL, FrameStylizer, Gpu, loadModel, stylizeImage, toRGBA, type Image } from '${PKG.name}/browser';
import { imageToTensor, noGrad } from '${PKG.name}/engine';
// @ts-expect-error files are not part of the browser API
import { readImage } from '${PKG.name}/browser';

export async function show(img: Image, ctx: CanvasRenderingContext2D): Promise<void> {
  const gpu = await Gpu.create();
  const net = await loadModel(gpu, DEFAULT_MODEL.url);
  const out = await stylizeImage(gpu, net, img, { strength: 0.8 });
  const pixels = ctx.createImageData(out.width, out.height);
  pixels.data.set(toRGBA(out));
  ctx.putImageData(pixels, 0, 0);
  const x = noGrad(() => imageToTensor(gpu, img));
  x.dispose();
  void FrameStylizer;
  void readImage;
}
`,
    );
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...strict, module: 'NodeNext', moduleResolution: 'NodeNext' }, files: ['node-app.ts'] }));
    const web = { ...strict, module: 'ESNext', moduleResolution: 'Bundler', customConditions: ['browser'] };
    writeFileSync(join(app, 'tsconfig.web.json'), JSON.stringify({ compilerOptions: web, files: ['web-app.ts'] }));
    for (const p of ['tsconfig.json', 'tsconfig.web.json']) {
      const r = await node([TSC, '-p', p], app).catch((e) => e);
      expect(`${r.stdout ?? ''}${r.stderr ?? ''}`, p).toBe('');
    }
  });

  it('esbuild bundles a browser consumer of /browser and /engine with nothing of Node in it, one copy of the library', async () => {
    writeFileSync(
      join(app, 'web.js'),
      `import { DEFAULT_MODEL, Gpu, loadModel, stylizeImage, toRGBA } from '${PKG.name}/browser';
import { Tensor, noGrad } from '${PKG.name}/engine';
export async function run(img) {
  const gpu = await Gpu.create();
  const net = await loadModel(gpu, DEFAULT_MODEL.url);
  return [toRGBA(await stylizeImage(gpu, net, img)), noGrad(() => Tensor.from(gpu, new Float32Array(1), [1]))];
}
`,
    );
    const r = await esbuild.build({ absWorkingDir: app, entryPoints: ['web.js'], bundle: true, platform: 'browser', format: 'esm', write: false, metafile: true, logLevel: 'silent' });
    const inputs = Object.keys(r.metafile.inputs);
    const nodeOnly = new Set([...builtinModules, 'sharp', 'webgpu']);
    expect(inputs.filter((i) => i.startsWith('node:') || nodeOnly.has(i) || /node_modules\/(sharp|webgpu|@img)\//.test(i))).toEqual([]);
    // /engine resolved to its browser build, which shares the bundle's chunk: one Tensor class, one tape.
    expect(inputs.filter((i) => i !== 'web.js').every((i) => i.startsWith('node_modules/perceptual-webgpu/dist/web/'))).toBe(true);
    expect(inputs).toContain('node_modules/perceptual-webgpu/dist/web/engine.js');
    expect(inputs.filter((i) => /\/chunk-[^/]+\.js$/.test(i))).toHaveLength(1);
    const [out] = r.outputFiles;
    expect(Object.values(r.metafile.outputs)[0].imports).toEqual([]);
    expect(out.text).not.toMatch(/\brequire\s*\(|\bfrom\s*["']node:|\bimport\s*\(\s*["'](node:|sharp|webgpu)/);
  });
});
