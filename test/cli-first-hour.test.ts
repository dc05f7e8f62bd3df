// A newcomer's first hour with the CLI (issue #20), inputs that were written over or decoded without bound (#14
// items 7 and 8), and progress where a user waits (#19 item 2). Each case runs the command on its failing input
// (made here, small) and asserts the message (the path, the flag, the real size), the exit code, that no empty output
// folder is left and nothing is lost, and — for everything that can be checked up front — that the command stopped
// before asking for a GPU adapter (adapterRequests(), counted in src/gpu/device.ts).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DEFAULT_MODEL } from '../src/api/default-model.js';
import { loadModel } from '../src/api/model-node.js';
import { stylizeImage } from '../src/api/stylize.js';
import { cli } from '../src/cli/commands.js';
import { formatProgress } from '../src/cli/progress.js';
import { adapterRequests } from '../src/gpu/device.js';
import { kernel } from '../src/gpu/kernel.js';
import { readImage, writeImage } from '../src/io/image-node.js';
import { createImage } from '../src/io/image.js';
import { SRNet, saveSRNet, upscaleImage } from '../src/nets/sr-net.js';
import { ImageFolder } from '../src/train/dataset.js';
import { useGpu } from './helpers/gpu.js';
import { rng } from './helpers/rand.js';
import { picture, randomWeightFile, writePictures } from './helpers/shared.js';

const gpu = useGpu();
const root = mkdtempSync(join(tmpdir(), 'pw-first-hour-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
/** A new path under the test's folder (not created). */
const fresh = (name: string) => join(root, `${name}-${n++}`);
/** A new folder with generated pictures in it. */
async function pictures(sizes: [number, number][], seed = 1): Promise<{ dir: string; files: string[] }> {
  const dir = fresh('in');
  mkdirSync(dir);
  return { dir, files: await writePictures(dir, sizes, seed) };
}

interface Run {
  code: number;
  out: string;
  /** console.error and direct stderr writes (the progress line), in order. */
  err: string;
  /** Whether the command asked for a GPU adapter. */
  gpu: boolean;
}

/** Runs `perceptual ARGV` in-process, capturing what it prints. */
async function run(...argv: string[]): Promise<Run> {
  let out = '';
  let err = '';
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void (out += `${a.join(' ')}\n`));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void (err += `${a.join(' ')}\n`));
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  const before = adapterRequests();
  try {
    const code = await cli(argv);
    return { code, out, err, gpu: adapterRequests() > before };
  } finally {
    vi.restoreAllMocks();
  }
}

/** `perceptual ARGV` as a separate process (the TypeScript through tsx), as a user runs it. */
function spawnCli(argv: string[], env: Record<string, string> = {}, preload: string[] = []) {
  const r = spawnSync(process.execPath, [...preload.flatMap((p) => ['--import', p]), '--import', 'tsx', 'src/cli/main.ts', ...argv], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, ...env },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const lines = (s: string) => s.split('\n').filter((l) => l.startsWith('perceptual'));

describe('#20.1 the first run', () => {
  it('no adapter: one line that names the fix, exit 1, no output folder, and none of the driver’s own lines', () => {
    const out = fresh('out');
    // No Vulkan driver at all: the loader finds none.
    const r = spawnCli(['stylize', 'examples/village.png', '--out', out], { VK_ICD_FILENAMES: join(root, 'no-driver.json') });
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n')).toEqual([expect.stringMatching(/^perceptual stylize: No WebGPU adapter: .*'bash \.ci\/install-lavapipe\.sh'.*--verbose/)]);
    expect(existsSync(out)).toBe(false);
    // --verbose shows what the loader said.
    const v = spawnCli(['stylize', 'examples/village.png', '--out', out, '--verbose'], { VK_ICD_FILENAMES: join(root, 'no-driver.json') });
    expect(v.code).toBe(1);
    expect(v.err).toMatch(/vkCreateInstance|Vulkan|driver/i);
    expect(v.err.split('\n').length).toBeGreaterThan(2);
  });

  it('a working run prints its own lines only; --verbose adds the driver’s', async () => {
    const { files } = await pictures([[12, 10]]);
    const r = spawnCli(['stylize', files[0], '--out', fresh('out')]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/img0\.png → .*img0\.png \(12×10, /);
    // Dawn's notes on lavapipe ("maxDynamicUniformBuffersPerPipelineLayout artificially reduced ...") are gone.
    expect(r.err.split('\n').filter((l) => l && !l.startsWith('stylize '))).toEqual([]);
    if (/llvmpipe|lavapipe/i.test(gpu().adapterInfo.device + gpu().adapterInfo.description)) {
      const v = spawnCli(['stylize', files[0], '--out', fresh('out'), '--verbose']);
      expect(v.code).toBe(0);
      expect(v.err).toContain('artificially reduced');
    }
  });

  it('a SIGINT sent to the command (no terminal: a script’s kill) reaches it through the wrapper that hides the driver’s lines', async () => {
    const { files } = await pictures([[192, 160]]);
    const out = fresh('out');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'stylize', files[0], '--out', out, '--tile', '16'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    const end = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
      child.stderr.on('data', (d) => {
        err += d;
        if (/tile \d+\/\d+/.test(err) && !child.killed) child.kill('SIGINT');
      });
      child.on('close', (code, signal) => res({ code, signal }));
    });
    // stylize has no Ctrl-C handler of its own: it stops as Node does, by the signal, and writes nothing.
    expect(end, err).toEqual({ code: null, signal: 'SIGINT' });
    expect(existsSync(join(out, 'img0.png'))).toBe(false);
  });

  it('kernels are parsed when first used, not when their module loads (start-up time)', () => {
    const k = kernel('never.used', 'this is not WGSL');
    expect(k.name).toBe('never.used');
    expect(() => k.bindings).toThrow();
  });
});

describe('#20.2 offline and missing weights', () => {
  it('weights fetch without a network says so and how to supply the file by hand', async () => {
    const cache = fresh('cache');
    const r = await run('weights', 'fetch', 'squeezenet1_1', '--cache-dir', cache, '--url', 'http://127.0.0.1:1/squeezenet1_1-b8a52dc0.pth', '--quiet');
    expect(r.code).toBe(1);
    const [line] = lines(r.err);
    expect(line).toContain('the network looks unreachable');
    expect(line).toContain(`put it at ${join(cache, 'squeezenet1_1-b8a52dc0.pth')}`);
    expect(line).toContain("run 'perceptual weights fetch squeezenet1_1' again");
    expect(line).toContain('--url URL');
    expect(line).toContain('--loss-weights FILE');
  });

  it('training errors name the flags, not the library’s option names', async () => {
    const { dir } = await pictures([[32, 32], [32, 32]]);
    const prev = process.env.PERCEPTUAL_CACHE_DIR;
    process.env.PERCEPTUAL_CACHE_DIR = fresh('empty-cache');
    try {
      const base = ['train-style', '--style', join(dir, 'img0.png'), '--data', dir, '--width', '4', '--size', '24', '--batch', '1', '--steps', '1', '--loss-net', 'squeezenet1_1'];
      const noWeights = await run(...base, '--out', fresh('run'));
      expect(noWeights.code).toBe(1);
      expect(noWeights.err).toMatch(/run 'perceptual weights fetch squeezenet1_1' or pass --loss-weights FILE/);
      expect(noWeights.err).not.toContain('lossWeights');

      const out = fresh('run');
      mkdirSync(out);
      writeFileSync(join(out, 'checkpoint.safetensors'), 'an old run');
      const taken = await run(...base, '--loss-weights', randomWeightFile('squeezenet1_1', 2), '--out', out);
      expect(taken.code).toBe(1);
      expect(taken.err).toMatch(/already holds a checkpoint .*resume it, or choose --overwrite to start over/);
      expect(readFileSync(join(out, 'checkpoint.safetensors'), 'utf8')).toBe('an old run');
    } finally {
      if (prev === undefined) delete process.env.PERCEPTUAL_CACHE_DIR;
      else process.env.PERCEPTUAL_CACHE_DIR = prev;
    }
  });
});

describe('#20.3 every option, input and the output location are checked before the GPU starts', () => {
  let photo = '';
  beforeAll(async () => {
    photo = (await pictures([[16, 12]])).files[0];
  });

  it.each([
    [['--strength', '1.5'], "--strength must be a number from 0 to 1, got '1.5'"],
    [['--strength', 'abc'], "--strength must be a number from 0 to 1, got 'abc'"],
    [['--strength', '-1'], "--strength must be a number from 0 to 1, got '-1'"],
    [['--tile', '102'], "--tile must be a multiple of 4, got '102'"],
    [['--tile', 'abc'], "--tile must be a multiple of 4, got 'abc'"],
    [['--max-pixels', '0'], "--max-pixels must be a positive integer, got '0'"],
  ])('stylize %j: exit 2 with the usage, nothing created, no GPU', async (opt, says) => {
    const out = fresh('out');
    const r = await run('stylize', photo, '--out', out, ...opt);
    expect(r.code).toBe(2);
    expect(r.err.split('\n')[0]).toBe(`perceptual stylize: ${says}`);
    expect(r.err).toContain('usage: perceptual stylize');
    expect([r.gpu, existsSync(out)]).toEqual([false, false]);
  });

  it('an empty input folder: exit 1 naming it (and its sub-folders), nothing created, no GPU', async () => {
    const empty = fresh('empty');
    mkdirSync(join(empty, 'sub'), { recursive: true });
    const out = fresh('out');
    const r = await run('stylize', empty, '--out', out);
    expect(r.code).toBe(1);
    expect(lines(r.err)).toEqual([`perceptual stylize: folder '${empty}' holds no image files (JPEG, PNG, WebP, TIFF, GIF, AVIF, SVG); it has 1 sub-folder: --recursive reads them`]);
    expect([r.gpu, existsSync(out)]).toEqual([false, false]);
  });

  it('an output folder that cannot be written: exit 1 before any work', async () => {
    const parent = fresh('locked');
    mkdirSync(parent);
    const root0 = process.getuid?.() === 0;
    // root writes through file modes: an immutable folder stops even root.
    if (root0) execFileSync('chattr', ['+i', parent]);
    else execFileSync('chmod', ['555', parent]);
    try {
      for (const out of [parent, join(parent, 'new')]) {
        const r = await run('stylize', photo, '--out', out);
        expect(r.code, r.err).toBe(1);
        expect(lines(r.err)[0]).toMatch(new RegExp(`^perceptual stylize: --out '${out}' (is not writable|cannot be created: '.*locked-\\d+' is not writable)`));
        expect(r.gpu).toBe(false);
      }
      expect(readdirSync(parent)).toEqual([]);
    } finally {
      execFileSync(root0 ? 'chattr' : 'chmod', root0 ? ['-i', parent] : ['755', parent]);
    }
  });

  it('an unreadable image is named before the GPU starts; the others are still processed', async () => {
    const { dir } = await pictures([[10, 10]]);
    writeFileSync(join(dir, 'notes.png'), 'not a picture');
    const out = fresh('out');
    const r = await run('stylize', dir, '--out', out, '--quiet');
    expect(r.code).toBe(1);
    expect(lines(r.err)[0]).toBe(`perceptual stylize: cannot decode image '${join(dir, 'notes.png')}': not an image (unrecognised or unsupported format)`);
    expect(readdirSync(out)).toEqual(['img0.png']);
    // All inputs bad: no GPU, no folder.
    const none = fresh('out');
    const bad = await run('stylize', join(dir, 'notes.png'), '--out', none);
    expect([bad.code, bad.gpu, existsSync(none)]).toEqual([1, false, false]);
  });
});

describe('#20.4 path mistakes get one line naming the path and the flag', () => {
  let photo = '';
  beforeAll(async () => {
    photo = (await pictures([[16, 12]])).files[0];
  });

  it.each([
    ['a folder as --model', () => fresh('model-dir'), (p: string) => mkdirSync(p), (p: string) => `--model '${p}' is a folder, not a file (expected a safetensors file or a PyTorch checkpoint (.pth, a zip archive))`],
    ['a missing --model', () => fresh('missing.safetensors'), () => {}, (p: string) => `--model '${p}': no such file`],
    [
      'a text file named .pth',
      () => fresh('notes.pth'),
      (p: string) => writeFileSync(p, 'model goes here\n'),
      (p: string) => `--model '${p}' is a text file (it starts 'model goes here'): expected a safetensors file or a PyTorch checkpoint (.pth, a zip archive)`,
    ],
    ['a PNG as --model', () => fresh('model.pth'), (p: string) => writeFileSync(p, readFileSync('examples/village.png')), (p: string) => `--model '${p}' is a PNG image: expected a safetensors file or a PyTorch checkpoint (.pth, a zip archive)`],
  ])('stylize with %s: exit 1, no GPU, no output folder', async (_what, path, make, says) => {
    const p = path();
    make(p);
    const out = fresh('out');
    const r = await run('stylize', '--model', p, photo, '--out', out);
    expect(r.code).toBe(1);
    expect(lines(r.err)).toEqual([`perceptual stylize: ${says(p)}`]);
    expect([r.gpu, existsSync(out)]).toEqual([false, false]);
  });

  it('--out a file, or below one; upscale --model a folder; a missing input', async () => {
    const file = fresh('a-file');
    writeFileSync(file, 'x');
    const cases: [string[], string][] = [
      [['stylize', photo, '--out', file], `perceptual stylize: --out '${file}' is a file, not a folder`],
      [['stylize', photo, '--out', join(file, 'sub')], `perceptual stylize: --out '${join(file, 'sub')}': a part of the path is a file`],
      [['upscale', '--model', root, photo, '--out', fresh('out')], `perceptual upscale: --model '${root}' is a folder, not a file (expected a safetensors file or a PyTorch checkpoint (.pth, a zip archive))`],
      [['stylize', join(root, 'nope.png'), '--out', fresh('out')], `perceptual stylize: '${join(root, 'nope.png')}': no such file or folder`],
    ];
    for (const [argv, says] of cases) {
      const r = await run(...argv);
      expect([r.code, lines(r.err), r.gpu], argv.join(' ')).toEqual([1, [says], false]);
    }
    expect(readFileSync(file, 'utf8')).toBe('x');
  });
});

describe('#20.5 small and unusual images', () => {
  it('1×1 and 3×3 images are stylized at their own size (mirrored up to the network’s 5 px, cropped back)', async () => {
    const { dir } = await pictures([[1, 1], [3, 3], [5, 2]]);
    const out = fresh('out');
    const r = await run('stylize', dir, '--out', out, '--quiet');
    expect(r.code, r.err).toBe(0);
    for (const [f, w, h] of [['img0.png', 1, 1], ['img1.png', 3, 3], ['img2.png', 5, 2]] as const) {
      const o = await readImage(join(out, f));
      expect([f, o.width, o.height]).toEqual([f, w, h]);
    }
    expect(r.out).toMatch(/img0\.png → .*\(1×1, /);
  });

  it('transparency is kept (the original alpha composited back), 16-bit said to be written as 8-bit', async () => {
    const dir = fresh('in');
    mkdirSync(dir);
    const w = 12;
    const h = 9;
    const rgba = Buffer.alloc(w * h * 4);
    for (let i = 0; i < w * h; i++) rgba.set([(i * 7) % 256, 90, 200, (i * 23) % 256], 4 * i);
    await sharp(rgba, { raw: { width: w, height: h, channels: 4 } }).png().toFile(join(dir, 'clear.png'));
    const deep = new Uint16Array(w * h * 3).map((_, i) => (i * 3001) % 65536);
    await sharp(Buffer.from(deep.buffer), { raw: { width: w, height: h, channels: 3 } }).toColourspace('rgb16').png().toFile(join(dir, 'deep.png'));
    const out = fresh('out');
    const r = await run('stylize', dir, '--out', out, '--quiet');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/clear\.png → .*; alpha kept\)/);
    expect(r.out).toMatch(/deep\.png → .*; 16-bit input written as 8-bit\)/);
    const { data, info } = await sharp(join(out, 'clear.png')).raw().toBuffer({ resolveWithObject: true });
    expect(info.channels).toBe(4);
    for (let i = 0; i < w * h; i++) expect(data[4 * i + 3]).toBe(rgba[4 * i + 3]);
    // JPEG has no alpha: said so.
    const j = await run('stylize', join(dir, 'clear.png'), '--out', fresh('out'), '--format', 'jpg', '--quiet');
    expect(j.out).toContain('alpha dropped: JPEG has none, use --format png');
    // The library carries the alpha plane too.
    const net = await loadModel(gpu(), DEFAULT_MODEL.url);
    try {
      const img = await readImage(join(dir, 'clear.png'));
      const styled = await stylizeImage(gpu(), net, img);
      expect(styled.alpha).toEqual(img.alpha);
    } finally {
      net.dispose();
    }
  });

  it('sub-folders: skipped with a note, or read with --recursive (outputs keep the sub-folders)', async () => {
    const { dir } = await pictures([[8, 8]]);
    mkdirSync(join(dir, 'trip'));
    await writeImage(join(dir, 'trip', 'img0.png'), picture(9, 7, 3));
    const flat = fresh('out');
    const a = await run('stylize', dir, '--out', flat, '--quiet');
    expect(a.code).toBe(0);
    expect(lines(a.err)).toEqual([`perceptual stylize: '${dir}': 1 sub-folder skipped (--recursive reads them)`]);
    expect(readdirSync(flat)).toEqual(['img0.png']);
    const deep = fresh('out');
    const b = await run('stylize', dir, '--out', deep, '--recursive', '--quiet');
    expect(b.code, b.err).toBe(0);
    expect(readdirSync(deep).sort()).toEqual(['img0.png', 'trip']);
    expect(readdirSync(join(deep, 'trip'))).toEqual(['img0.png']);
    // The output folder inside the input folder is not an input: a second run writes the same files again.
    const inside = join(dir, 'styled');
    for (let i = 0; i < 2; i++) {
      const c = await run('stylize', dir, '--out', inside, '--recursive', '--quiet');
      expect([c.code, lines(c.err)], c.err).toEqual([0, []]);
    }
    expect(readdirSync(inside).sort()).toEqual(['img0.png', 'trip']);
  });

  it('the help lists every format read; upscale takes 1×1 images and keeps alpha', async () => {
    for (const c of ['stylize', 'upscale']) {
      const h = await run(c, '--help');
      for (const f of ['JPEG', 'PNG', 'WebP', 'TIFF', 'GIF', 'AVIF', 'SVG']) expect(h.out, `${c} ${f}`).toContain(f);
    }
    const model = fresh('sr.safetensors');
    const net = new SRNet(gpu(), { scale: 4, width: 4, blocks: 1, rand: rng(3) });
    writeFileSync(model, await saveSRNet(net));
    net.dispose();
    const dir = fresh('in');
    mkdirSync(dir);
    await writeImage(join(dir, 'dot.png'), createImage(1, 1, Float32Array.of(10, 200, 30)));
    await writeImage(join(dir, 'clear.png'), { ...picture(3, 2, 4), alpha: Float32Array.of(0, 255, 128, 255, 0, 64) });
    const out = fresh('out');
    const r = await run('upscale', '--model', model, dir, '--out', out, '--quiet');
    expect(r.code, r.err).toBe(0);
    expect([(await readImage(join(out, 'dot.png'))).width, (await readImage(join(out, 'dot.png'))).height]).toEqual([4, 4]);
    const clear = await readImage(join(out, 'clear.png'));
    expect([clear.width, clear.height, clear.alpha?.length]).toEqual([12, 8, 96]);
  });
});

describe('#14.7 no output overwrites an input; no two inputs share an output', () => {
  it('stylize photo.png photo.jpg --out . is refused before any work; both originals are intact', async () => {
    const dir = fresh('photos');
    mkdirSync(dir);
    await writeImage(join(dir, 'photo.png'), picture(10, 8, 1));
    await writeImage(join(dir, 'photo.jpg'), picture(10, 8, 2));
    const before = readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))] as const);
    const r = await run('stylize', join(dir, 'photo.png'), join(dir, 'photo.jpg'), '--out', dir);
    expect(r.code).toBe(1);
    expect(lines(r.err)).toEqual([`perceptual stylize: writing '${join(dir, 'photo.png')}' (from '${join(dir, 'photo.png')}') would overwrite the input '${join(dir, 'photo.png')}': choose another --out`]);
    expect(r.gpu).toBe(false);
    for (const [f, bytes] of before) expect(readFileSync(join(dir, f)).equals(bytes), f).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['photo.jpg', 'photo.png']);
    // The .jpg alone into its own folder would write photo.png, the other input: refused too.
    const alone = await run('stylize', join(dir, 'photo.jpg'), join(dir, 'photo.png'), '--out', fresh('x'), '--format', 'png');
    expect(lines(alone.err)[0]).toMatch(/would both be written to/);
  });

  it('upscale --out the input’s folder is refused; an output that is a hard link to an input too', async () => {
    const model = fresh('sr.safetensors');
    const net = new SRNet(gpu(), { scale: 4, width: 4, blocks: 1, rand: rng(5) });
    writeFileSync(model, await saveSRNet(net));
    net.dispose();
    const { dir, files } = await pictures([[6, 5]]);
    const bytes = readFileSync(files[0]);
    const r = await run('upscale', '--model', model, files[0], '--out', dir);
    expect([r.code, r.gpu]).toEqual([1, false]);
    expect(lines(r.err)[0]).toContain(`would overwrite the input '${files[0]}'`);
    expect(readFileSync(files[0]).equals(bytes)).toBe(true);

    const out = fresh('out');
    mkdirSync(out);
    linkSync(files[0], join(out, 'img0.png')); // the same file under the output's name
    const l = await run('stylize', files[0], '--out', out);
    expect([l.code, l.gpu]).toEqual([1, false]);
    expect(lines(l.err)[0]).toContain(`would overwrite the input '${files[0]}'`);
    expect(readFileSync(files[0]).equals(bytes)).toBe(true);
  });

  it('two inputs with one output name (a/x.png, b/x.jpg) are refused before any work', async () => {
    const a = await pictures([[5, 5]], 1);
    const b = await pictures([[6, 6]], 2);
    const out = fresh('out');
    const r = await run('stylize', a.files[0], b.files[0], '--out', out);
    expect([r.code, r.gpu, existsSync(out)]).toEqual([1, false, false]);
    expect(lines(r.err)).toEqual([`perceptual stylize: '${a.files[0]}' and '${b.files[0]}' would both be written to '${join(out, 'img0.png')}': rename one, or run them separately`]);
  });
});

describe('#14.8 images beyond a pixel limit are refused from their header, before decoding', () => {
  let bombs: { png: string; svg: string; small: string; dir: string };
  beforeAll(async () => {
    const dir = fresh('bombs');
    mkdirSync(dir);
    // 256 megapixels in a few hundred kB of PNG; 3.8 gigapixels in a 70-byte SVG.
    const png = join(dir, 'flat.png');
    await sharp({ create: { width: 16000, height: 16000, channels: 3, background: '#000' }, limitInputPixels: false }).png({ compressionLevel: 9 }).toFile(png);
    const svg = join(dir, 'huge.svg');
    writeFileSync(svg, '<svg xmlns="http://www.w3.org/2000/svg" width="62000" height="62000"/>');
    const small = join(dir, 'small.png');
    await writeImage(small, picture(9, 9, 1));
    bombs = { png, svg, small, dir };
  });

  it('stylize: each named with its real size and the flag that allows it, the rest processed; memory and CPU stay bounded', () => {
    const out = fresh('out');
    const usage = join(root, `usage-${n++}.json`);
    const report = join(root, `report-${n++}.mjs`);
    writeFileSync(report, `import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(${JSON.stringify(usage)}, JSON.stringify(process.resourceUsage())));\n`);
    // --verbose: the command runs in this process (no child), so the figures are its own.
    const r = spawnCli(['stylize', bombs.png, bombs.svg, bombs.small, '--out', out, '--verbose', '--quiet'], {}, [report]);
    expect(r.code).toBe(1);
    const said = lines(r.err);
    expect(said).toContain(`perceptual stylize: '${bombs.png}' is 16000×16000 (256 megapixels), beyond the limit of 67 megapixels (not decoded); --max-pixels 256000000 allows it`);
    expect(said).toContain(`perceptual stylize: '${bombs.svg}' is 62000×62000 (3.84 gigapixels), beyond the limit of 67 megapixels (not decoded); --max-pixels 3844000000 allows it`);
    expect(readdirSync(out)).toEqual(['small.png']);
    const u = JSON.parse(readFileSync(usage, 'utf8')) as NodeJS.ResourceUsage;
    // Decoding them would take 0.8 and 11.5 GB (8-bit RGB) before the float copies; the run stays at the runtime's size.
    console.log(`#14.8 stylize of two pixel bombs + one 9×9 image: max RSS ${(u.maxRSS / 1024).toFixed(0)} MB, CPU ${((u.userCPUTime + u.systemCPUTime) / 1e6).toFixed(1)} s`);
    expect(u.maxRSS / 1024).toBeLessThan(700);
    expect((u.userCPUTime + u.systemCPUTime) / 1e6).toBeLessThan(60);
  });

  it('--max-pixels moves the limit; the library refuses by default (training decodes through readImage too)', async () => {
    const { files } = await pictures([[20, 20]]);
    const low = await run('stylize', files[0], '--out', fresh('out'), '--max-pixels', '399', '--quiet');
    expect(low.code).toBe(1);
    expect(lines(low.err)[0]).toBe(`perceptual stylize: '${files[0]}' is 20×20 (400 pixels), beyond the limit of 399 pixels (not decoded); --max-pixels 400 allows it`);
    expect(low.gpu).toBe(false);
    expect((await run('stylize', files[0], '--out', fresh('out'), '--max-pixels', '400', '--quiet')).code).toBe(0);
    const before = process.memoryUsage().rss;
    await expect(readImage(bombs.png)).rejects.toThrow(`cannot decode image '${bombs.png}' is 16000×16000 (256 megapixels), beyond the limit of 67 megapixels (not decoded)`);
    await expect(readImage(bombs.svg)).rejects.toThrow(/3\.84 gigapixels/);
    expect((process.memoryUsage().rss - before) / 2 ** 20).toBeLessThan(200);
    expect((await readImage(bombs.png, { maxPixels: 16000 * 16000 - 1 }).catch((e: Error) => e.message)) as string).toMatch(/beyond the limit/);
  });
});

describe('#14.8 in training', () => {
  it('a pixel bomb among the training images is skipped by name, undecoded; the batch is made of the others', async () => {
    const dir = fresh('data');
    mkdirSync(dir);
    await sharp({ create: { width: 12000, height: 12000, channels: 3, background: '#000' }, limitInputPixels: false }).png({ compressionLevel: 9 }).toFile(join(dir, 'bomb.png'));
    await writePictures(dir, [[20, 20], [24, 20]], 3, (i) => `ok${i}.png`);
    const warnings: string[] = [];
    const data = await ImageFolder.open(dir, { size: 16, batchSize: 2, onWarning: (m) => void warnings.push(m) });
    const before = process.memoryUsage().rss;
    const batch = await data.next();
    expect(batch.shape).toEqual([2, 3, 16, 16]);
    expect(batch.files.map((f) => f.replace(/^.*\//, '')).sort()).toEqual(['ok0.png', 'ok1.png']);
    expect(warnings).toEqual([expect.stringContaining(`'${join(dir, 'bomb.png')}' is 12000×12000 (144 megapixels), beyond the limit of 67 megapixels (not decoded)`)]);
    // Decoding it would take 430 MB of 8-bit samples and 1.7 GB as float32.
    expect((process.memoryUsage().rss - before) / 2 ** 20).toBeLessThan(200);
  });
});

describe('#19.2 progress per image and per tile', () => {
  it('stylizeImage reports tile × stage units up to the total; an image in one piece is one unit', async () => {
    const net = await loadModel(gpu(), DEFAULT_MODEL.url);
    try {
      const seen: { done: number; total: number; tiles: number }[] = [];
      await stylizeImage(gpu(), net, picture(40, 24, 2), { tile: 16, onProgress: (p) => seen.push({ done: p.done, total: p.total, tiles: p.tiles }) });
      expect(seen.map((p) => p.done)).toEqual(Array.from({ length: seen.length }, (_, i) => i + 1));
      expect(seen.at(-1)!.done).toBe(seen[0].total);
      expect(seen[0].tiles).toBe(6);
      const whole: unknown[] = [];
      await stylizeImage(gpu(), net, picture(12, 12, 3), { onProgress: (p) => whole.push(p) });
      expect(whole).toEqual([{ done: 1, total: 1, stage: 1, stages: 1, tile: 1, tiles: 1 }]);
    } finally {
      net.dispose();
    }
    const sr = new SRNet(gpu(), { scale: 4, width: 4, blocks: 1, rand: rng(6) }).eval();
    try {
      const tiles: string[] = [];
      await upscaleImage(sr, picture(7, 5, 1), { tile: 3, onProgress: (p) => tiles.push(`${p.done}/${p.total}`) });
      expect(tiles).toEqual(['1/6', '2/6', '3/6', '4/6', '5/6', '6/6']);
    } finally {
      sr.dispose();
    }
  });

  it('the CLI shows images and tiles on stderr (pixels, rate, ETA); --quiet shows none', async () => {
    const { dir } = await pictures([[40, 24], [8, 8]]);
    const r = await run('stylize', dir, '--out', fresh('out'), '--tile', '16');
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/^stylize +\d+% .*px\/1\.0 kpx .*\| image 1\/2 img0\.png/m);
    expect(r.err).toMatch(/^stylize 1\.0 kpx in \d+:\d\d/m);
    expect(r.out.split('\n').filter(Boolean)).toHaveLength(2);
    const q = await run('stylize', dir, '--out', fresh('out'), '--quiet');
    expect(q.err).toBe('');
    // On a terminal the line is redrawn in place; the tile detail is in it.
    expect(formatProgress({ label: 'stylize', done: 250, total: 1000, unit: 'pixels', rate: 100, elapsedMs: 2500, detail: 'image 1/2 img0.png tile 3/6 stage 2/6' })).toBe(
      'stylize  25% 250 px/1.0 kpx 100 px/s ETA 0:08 | image 1/2 img0.png tile 3/6 stage 2/6',
    );
  });
});
