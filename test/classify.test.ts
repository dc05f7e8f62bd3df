// `perceptual classify`, run in-process on the shared content photos with the shared SqueezeNet 1.1 weights.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { classify, type Classification } from '../src/cli/classify.js';
import { IMAGENET_LABELS, imagenetLabel } from '../src/io/imagenet-labels.js';
import { SHARED_TAG } from './helpers/shared.js';

const CONTENT = '../shared/data/content';
const WEIGHTS = '../shared/weights/squeezenet1_1.safetensors';
const HAVE_SHARED = existsSync(CONTENT) && existsSync(WEIGHTS);

/** Runs classify(argv) capturing what it prints. */
async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  try {
    const code = await classify(argv);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

describe('ImageNet labels', () => {
  it('are the 1000 torchvision classes in index order', () => {
    expect(IMAGENET_LABELS.length).toBe(1000);
    expect(new Set(IMAGENET_LABELS).size).toBe(1000);
    const spot: Record<number, string> = {
      0: 'tench', 1: 'goldfish', 2: 'great white shark', 134: 'crane bird', 207: 'golden retriever', 281: 'tabby',
      483: 'castle', 517: 'crane', 639: 'maillot tank suit', 663: 'monastery', 668: 'mosque', 682: 'obelisk',
      698: 'palace', 780: 'schooner', 839: 'suspension bridge', 884: 'vault', 999: 'toilet tissue',
    };
    for (const [i, l] of Object.entries(spot)) expect([i, imagenetLabel(Number(i))]).toEqual([i, l]);
    expect(() => imagenetLabel(1000)).toThrow(/no class 1000/);
  });
});

describe('perceptual classify', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'perceptual-classify-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('usage errors exit 2; missing weights say how to get them', async () => {
    expect((await run([])).code).toBe(2);
    const bad = await run(['--frobnicate', 'x.jpg']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('usage: perceptual classify');
    vi.stubEnv('PERCEPTUAL_CACHE_DIR', dir);
    const none = await run(['x.jpg']);
    expect(none.code).toBe(1);
    expect(none.err).toContain(`perceptual weights fetch squeezenet1_1`);
    expect(none.err).toContain('--weights');
    expect(none.err).toContain(join(dir, 'squeezenet1_1.safetensors'));
    const missing = await run(['--weights', join(dir, 'nope.safetensors'), 'x.jpg']);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('nope.safetensors');
    const notWeights = join(dir, 'bad.safetensors');
    await writeFile(notWeights, 'definitely not safetensors');
    const bad2 = await run(['--weights', notWeights, 'x.jpg']);
    expect(bad2.code).toBe(1);
    expect(bad2.err).toContain(`--weights '${notWeights}' is a text file (it starts 'definitely not safetensors')`);
  });

  describe.skipIf(!HAVE_SHARED)(`on the shared content photos with the real weights ${SHARED_TAG}`, () => {
    // Expected with SqueezeNet 1.1, shorter side 256 + centre crop 224: the sailboat photo (a two-masted sailing
    // ship) is a schooner, the carved stone arch of amber.jpg a vault, and the Golden Gate shows a suspension
    // bridge among the top 5 (SqueezeNet's top 1 there is "pier", with the bridge third).
    it('names the right objects, as JSON', async () => {
      const files = ['sailboat.jpg', 'amber.jpg', 'golden_gate.jpg'].map((f) => join(CONTENT, f));
      const { code, out, err } = await run(['--json', '--weights', WEIGHTS, ...files]);
      expect(err).toBe('');
      expect(code).toBe(0);
      const res = JSON.parse(out) as Classification[];
      expect(res.map((r) => r.file)).toEqual(files);
      for (const r of res) {
        expect(r.top5).toHaveLength(5);
        const p = r.top5.map((c) => c.probability);
        expect([...p].sort((a, b) => b - a)).toEqual(p);
        expect(p.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(1 + 1e-6);
        for (const c of r.top5) expect(c.label).toBe(IMAGENET_LABELS[c.index]);
      }
      const [sail, amber, gate] = res;
      expect(sail.top5[0]).toMatchObject({ index: 780, label: 'schooner' });
      expect(sail.top5[0].probability).toBeGreaterThan(0.5);
      expect(sail.top5.slice(1).map((c) => c.label)).toEqual(expect.arrayContaining(['yawl', 'catamaran']));
      expect(amber.top5[0]).toMatchObject({ index: 884, label: 'vault' });
      expect(gate.top5.map((c) => c.label)).toContain('suspension bridge');
    });

    it('reports an unreadable file by name, still classifies the others, and exits 1 (text output)', async () => {
      const junk = join(dir, 'junk.jpg');
      await writeFile(junk, 'not a JPEG at all');
      const good = join(CONTENT, 'sailboat.jpg');
      const { code, out, err } = await run(['--weights', WEIGHTS, junk, good, join(dir, 'absent.png')]);
      expect(code).toBe(1);
      expect(err).toContain(`'${junk}'`);
      expect(err).toContain('not an image');
      expect(err).toMatch(/absent\.png.*no such file/);
      expect(err).toContain('2 of 3 images could not be read');
      expect(out.split('\n')[0]).toBe(good);
      expect(out).toMatch(/^ {2}1\. schooner +\d+\.\d\d% {2}\(class 780\)$/m);
      expect(out.split('\n').filter((l) => /^ {2}\d\. /.test(l))).toHaveLength(5);
    });
  });
});
