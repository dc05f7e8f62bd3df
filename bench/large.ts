// Large photos: seconds per megapixel of `stylizeImage` at 0.35 (one piece), 2, 8 and 24 MP (tiled), with the peak
// GPU memory (the buffer pool's peak in-use bytes) and the peak host memory (max RSS) of each run. Each size runs in
// its own process so that its max RSS is its own.
//
//   npx tsx bench/large.ts [--mp 0.35,2,8,24] [--model FILE] [--photo FILE] [--json FILE] [--memory-budget BYTES]
//
// The photo (default ../shared/data/content/golden_gate.jpg) is resized (Lanczos, sharp) to 3:2 frames of each size.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { loadModel } from '../src/api/model-node.js';
import { stylizeImage } from '../src/api/stylize.js';
import { DEFAULT_MODEL } from '../src/api/default-model.js';
import { Gpu } from '../src/gpu/index.js';
import { createImage } from '../src/io/image.js';

const { values: a } = parseArgs({
  options: {
    mp: { type: 'string', default: '0.35,2,8,24' },
    model: { type: 'string' },
    photo: { type: 'string', default: fileURLToPath(new URL('../../shared/data/content/golden_gate.jpg', import.meta.url)) },
    json: { type: 'string' },
    'memory-budget': { type: 'string' },
    child: { type: 'boolean' },
  },
});

/** A 3:2 frame of about `mp` megapixels, each side a multiple of 4. */
const frame = (mp: number) => {
  const h = Math.round(Math.sqrt((mp * 1e6) / 1.5) / 4) * 4;
  return { width: Math.round((h * 1.5) / 4) * 4, height: h };
};

async function one(mp: number): Promise<Record<string, unknown>> {
  const { width, height } = frame(mp);
  const { data, info } = await sharp(a.photo).resize(width, height, { fit: 'fill' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const n = width * height;
  const planar = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) planar[c * n + i] = data[i * info.channels + c];
  const img = createImage(width, height, planar);
  const gpu = await Gpu.create();
  try {
    const net = await loadModel(gpu, a.model ?? fileURLToPath(DEFAULT_MODEL.url));
    gpu.resetPeak();
    let tiles = 0;
    let stages = 0;
    const t0 = performance.now();
    await stylizeImage(gpu, net, img, {
      memoryBudget: a['memory-budget'] ? Number(a['memory-budget']) : undefined,
      onTile: (p) => {
        tiles = p.tiles;
        stages = p.stages;
        if (p.tile === p.tiles) process.stderr.write(`\r${mp} MP: stage ${p.stage}/${p.stages} (${((performance.now() - t0) / 1000).toFixed(0)} s)   `);
      },
    });
    const secs = (performance.now() - t0) / 1000;
    process.stderr.write('\n');
    net.dispose();
    return { mp: (width * height) / 1e6, width, height, secs, secsPerMp: secs / ((width * height) / 1e6), tiles, stages, peakGpuBytes: gpu.stats().peakInUseBytes, maxRssBytes: process.resourceUsage().maxRSS * 1024 };
  } finally {
    gpu.destroy();
  }
}

if (a.child) {
  console.log(JSON.stringify(await one(Number(a.mp))));
} else {
  const rows: Record<string, number>[] = [];
  for (const mp of a.mp!.split(',').map(Number)) {
    const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', '--mp', String(mp), '--photo', a.photo!];
    if (a.model) args.push('--model', a.model);
    if (a['memory-budget']) args.push('--memory-budget', a['memory-budget']);
    const out = execFileSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 });
    rows.push(JSON.parse(out.trim().split('\n').at(-1)!));
  }
  const base = rows[0].secsPerMp;
  console.log('| MP | size | tiles × stages | s | s/MP | × one-piece s/MP | peak GPU | max RSS |');
  console.log('|---:|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const gb = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
    console.log(`| ${r.mp.toFixed(2)} | ${r.width}×${r.height} | ${r.tiles ? `${r.tiles} × ${r.stages}` : 'one piece'} | ${r.secs.toFixed(1)} | ${r.secsPerMp.toFixed(2)} | ${(r.secsPerMp / base).toFixed(2)} | ${gb(r.peakGpuBytes)} | ${gb(r.maxRssBytes)} |`);
  }
  if (a.json) writeFileSync(a.json, JSON.stringify({ date: new Date().toISOString(), model: a.model ?? DEFAULT_MODEL.name, photo: a.photo, rows }, null, 2));
}
