// Video through ffmpeg (issue #18): a generated clip in, a clip of the same frame count, size and frame rate out,
// audio copied bit for bit; batches equal frame-by-frame stylization; bad inputs get one line and exit 1; a stop
// (signal or Ctrl-C) leaves a playable file of the frames done; memory stays flat over 2,000 frames.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DEFAULT_MODEL } from '../src/api/default-model.js';
import { loadModel } from '../src/api/model-node.js';
import { stylizeImage } from '../src/api/stylize.js';
import { probeVideo, readVideo, stylizeVideo } from '../src/api/video-node.js';
import { blurredInput, stylizeFrames, TemporalNorm } from '../src/api/video.js';
import { stylizeVideoCli } from '../src/cli/stylize-video.js';
import { createImage, type Image } from '../src/io/image.js';
import { saveTransformerNet } from '../src/nets/model-file.js';
import { TransformerNet } from '../src/nets/transformer-net.js';
import { useGpu } from './helpers/gpu.js';
import { rng } from './helpers/rand.js';

const gpu = useGpu();
const dir = mkdtempSync(join(tmpdir(), 'pw-video-'));
const ff = (...args: string[]) => execFileSync('ffmpeg', ['-v', 'error', '-y', ...args]);
/** ffprobe's value of one entry of the first stream of a kind, counting frames/packets when asked. */
const probe = (file: string, kind: 'v' | 'a', entry: string) =>
  execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-count_packets', '-select_streams', `${kind}:0`, '-show_entries', `stream=${entry}`, '-of', 'default=nw=1:nk=1', file], { encoding: 'utf8' }).trim();
const audioMd5 = (file: string) => execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:a', '-c', 'copy', '-f', 'md5', '-'], { encoding: 'utf8' }).trim();

/** A test pattern with a moving element and a tone: `frames` frames of w×h at `fps`. */
function clip(name: string, w: number, h: number, fps: number | string, frames: number, audio = true, codec = ['-c:v', 'libx264', '-pix_fmt', 'yuv420p']): string {
  const f = join(dir, name);
  const a = audio ? ['-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=44100:duration=${frames / Number(fps)}`, '-c:a', 'aac'] : [];
  ff('-f', 'lavfi', '-i', `testsrc=size=${w}x${h}:rate=${fps}`, ...a, '-frames:v', String(frames), ...codec, f);
  return f;
}

/** Runs a command, capturing what it prints. */
async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const o = vi.spyOn(console, 'log').mockImplementation((...m: unknown[]) => void out.push(m.join(' ')));
  const e = vi.spyOn(console, 'error').mockImplementation((...m: unknown[]) => void err.push(m.join(' ')));
  try {
    return { code: await stylizeVideoCli(argv), out: out.join('\n'), err: err.join('\n') };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe('stylize-video', () => {
  let input: string;
  beforeAll(() => {
    input = clip('in.mp4', 48, 32, 15, 12);
  });

  it('a clip in, a clip of the same frame count, size and frame rate out, the audio copied unchanged', async () => {
    const out = join(dir, 'out.mp4');
    const r = await run([input, '--out', out, '--batch', '5']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('12 frames, 15 fps, audio (aac) copied');
    expect(probe(out, 'v', 'nb_read_frames')).toBe('12');
    expect(probe(out, 'v', 'width,height,r_frame_rate').split('\n')).toEqual(['48', '32', '15/1']);
    expect(audioMd5(out)).toBe(audioMd5(input));
    expect(probe(out, 'a', 'nb_read_packets')).toBe(probe(input, 'a', 'nb_read_packets'));
  });

  it('odd sizes, --size, WebM and an NTSC frame rate; no audio is fine', async () => {
    const odd = clip('odd.mkv', 45, 33, '30000/1001', 7, false, ['-c:v', 'libx264', '-pix_fmt', 'yuv444p']);
    const out = join(dir, 'odd.webm');
    const r = await run([odd, '--out', out, '--size', '20', '--strength', '0.5', '--blur', '1']);
    expect(r.code, r.err).toBe(0);
    expect(probe(out, 'v', 'nb_read_frames')).toBe('7');
    // Shorter side 20: 45×33 → 27×20; the rate kept exactly.
    expect(probe(out, 'v', 'width,height,r_frame_rate').split('\n')).toEqual(['27', '20', '30000/1001']);
  });

  it('bad input gets one line naming the file, and exit 1', async () => {
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'not a video');
    const sound = join(dir, 'tone.m4a');
    ff('-f', 'lavfi', '-i', 'sine=duration=0.5', '-c:a', 'aac', sound);
    writeFileSync(join(dir, 'file'), '');
    const cases: [string[], RegExp][] = [
      [[text, '--out', join(dir, 'x.mp4')], /^perceptual stylize-video: '.*notes\.txt' is not a video \(ffprobe: .+\)$/],
      [[join(dir, 'missing.mp4'), '--out', join(dir, 'x.mp4')], /^perceptual stylize-video: cannot read video '.*missing\.mp4': no such file or directory$/],
      [[sound, '--out', join(dir, 'x.mp4')], /^perceptual stylize-video: '.*tone\.m4a' has no video stream$/],
      [[input, '--out', join(dir, 'no-such-dir', 'x.mp4')], /^perceptual stylize-video: cannot write video '.*no-such-dir\/x\.mp4': no such file or directory$/],
      [[input, '--out', join(dir, 'file', 'x.mp4')], /^perceptual stylize-video: cannot write video '.*file\/x\.mp4': a parent is not a directory$/],
      [[input, '--out', dir], /^perceptual stylize-video: cannot write video '.*': is a directory$/],
      [[input, '--out', join(dir, '.', 'in.mp4')], /^perceptual stylize-video: the output '.*in\.mp4' is the input: choose another file$/],
    ];
    for (const [argv, message] of cases) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.err.split('\n'), r.err).toHaveLength(1);
      expect(r.err).toMatch(message);
    }
    expect(existsSync(join(dir, 'x.mp4'))).toBe(false);
    expect((await run([input])).code).toBe(2); // --out missing: usage
  });

  it('a stop through the signal finalises a playable file of the frames done', async () => {
    const net = await loadModel(gpu(), DEFAULT_MODEL.url);
    const ctl = new AbortController();
    const out = join(dir, 'stopped.mkv');
    const r = await stylizeVideo(gpu(), net, input, out, { batch: 2, signal: ctl.signal, onProgress: (p) => p.done === 4 && ctl.abort() });
    net.dispose();
    expect(r).toMatchObject({ status: 'aborted', frames: 4 });
    expect(probe(out, 'v', 'nb_read_frames')).toBe('4');
  });

  it('Ctrl-C on the command leaves a playable file of the frames done so far', async () => {
    const long = clip('long.mp4', 32, 24, 10, 400);
    const out = join(dir, 'interrupted.mp4');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'stylize-video', long, '--out', out, '--batch', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    let said = '';
    child.stdout.on('data', (d) => (said += d));
    const code = await new Promise<number | null>((res) => {
      child.stderr.on('data', (d) => {
        err += d;
        if (/frame \d+\/400/.test(err) && !child.killed) child.kill('SIGINT');
      });
      child.on('close', res);
    });
    expect(code, err).toBe(0);
    expect(err).toContain('stopping after this batch');
    const n = Number(probe(out, 'v', 'nb_read_frames'));
    expect(n).toBeGreaterThanOrEqual(1);
    expect(n).toBeLessThan(400);
    expect(said).toContain(`stopped: ${long} → ${out}`);
    expect(said).toContain(`${n} frames`);
  }, 120_000);
});

describe('stylizeFrames and TemporalNorm', () => {
  const frames = (n: number, w: number, h: number, seed: number): Image[] => {
    const r = rng(seed);
    return Array.from({ length: n }, () => createImage(w, h, Float32Array.from({ length: 3 * w * h }, () => 255 * r())));
  };
  const maxDiff = (a: Image[], b: Image[]) => Math.max(...a.map((img, i) => img.data.reduce((m, v, k) => Math.max(m, Math.abs(v - b[i].data[k])), 0)));
  const collect = async (it: AsyncIterable<Image>) => {
    const out: Image[] = [];
    for await (const f of it) out.push(f);
    return out;
  };
  let net: TransformerNet;
  beforeAll(async () => {
    net = await loadModel(gpu(), DEFAULT_MODEL.url);
  });
  afterAll(() => net?.dispose());

  it('batches give the frames stylizeImage gives one by one, in order (with the look applied)', async () => {
    const fs = frames(5, 21, 14, 1);
    const batched = await collect(stylizeFrames(gpu(), net, fs, { batch: 3, strength: 0.7, preserveColor: true }));
    const single = await Promise.all(fs.map((f) => stylizeImage(gpu(), net, f, { strength: 0.7, preserveColor: true })));
    expect(maxDiff(batched, single)).toBeLessThan(0.05);
  });

  it('blur: the network on frames blurred first', async () => {
    const fs = frames(2, 18, 12, 3);
    const blurred = await collect(stylizeFrames(gpu(), net, fs, { blur: 1.5 }));
    const by = await collect(stylizeFrames(gpu(), blurredInput(net, 1.5), fs));
    expect(maxDiff(blurred, by)).toBe(0);
    expect(maxDiff(blurred, await collect(stylizeFrames(gpu(), net, fs)))).toBeGreaterThan(1);
    expect(() => blurredInput(net, 0)).toThrow('blurredInput: sigma must be a positive number of pixels, got 0');
  });

  it('carried statistics: α = 1 is per-frame; batches of consecutive frames equal frames one at a time', async () => {
    const fs = frames(6, 20, 16, 2);
    const run = async (alpha: number, batch: number) => collect(stylizeFrames(gpu(), new TemporalNorm(net, { alpha }), fs, { batch }));
    const plain = await collect(stylizeFrames(gpu(), net, fs, { batch: 1 }));
    expect(maxDiff(await run(1, 4), plain)).toBeLessThan(0.05);
    const a = await run(0.3, 4);
    expect(maxDiff(a, await run(0.3, 1))).toBeLessThan(0.05);
    expect(maxDiff(a.slice(1), plain.slice(1))).toBeGreaterThan(1); // it does change what follows the first frame
    expect(maxDiff(a.slice(0, 1), plain.slice(0, 1))).toBeLessThan(0.05);
  });
});

describe('a long video', () => {
  it('2,000 frames stream through with flat memory (process RSS, GPU pool)', async () => {
    // 64×48 frames (36 KB each as floats): keeping them would add 74 MB over the run.
    const long = clip('2000.mkv', 64, 48, 25, 2000, true, ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p']);
    expect(Math.abs((await probeVideo(long)).frames! - 2000)).toBeLessThanOrEqual(2); // Matroska: duration × rate, an estimate
    // A narrow network keeps the test fast; the streaming is what is measured.
    const net = new TransformerNet(gpu(), { variant: 'pytorch-examples', width: 2, rand: rng(4) });
    const file = join(dir, 'w2.safetensors');
    writeFileSync(file, await saveTransformerNet(net));
    net.dispose();
    const model = await loadModel(gpu(), file);
    const rss: number[] = [];
    const pool: number[] = [];
    const r = await stylizeVideo(gpu(), model, long, join(dir, '2000-out.mkv'), {
      batch: 8,
      onProgress: (p) => {
        if (p.done % 100 === 0) {
          rss.push(process.memoryUsage().rss);
          pool.push(gpu().stats().totalBytes);
        }
      },
    });
    model.dispose();
    expect(r.frames).toBe(2000);
    const mb = (b: number) => b / 2 ** 20;
    // Warm-up over the first 500 frames; after that the most RSS ever reached may not grow with the length.
    const first = Math.max(...rss.slice(5, 10));
    const second = Math.max(...rss.slice(10));
    console.log(`RSS max over frames 600-1000: ${mb(first).toFixed(1)} MB, over 1100-2000: ${mb(second).toFixed(1)} MB; GPU pool ${pool.map(mb).slice(-3).map((v) => v.toFixed(2)).join(', ')} MB`);
    expect(mb(second - first)).toBeLessThan(24);
    expect(new Set(pool.slice(5)).size).toBe(1);
    expect(probe(join(dir, '2000-out.mkv'), 'v', 'nb_read_frames')).toBe('2000');
  }, 600_000);
});

describe('readVideo', () => {
  it('decodes every frame at the size asked', async () => {
    const f = clip('read.mp4', 32, 24, 12, 5, false);
    const got: Image[] = [];
    for await (const img of readVideo(f, { size: [16, 12] })) got.push(img);
    expect(got.map((g) => [g.width, g.height])).toEqual(Array(5).fill([16, 12]));
  });
});
