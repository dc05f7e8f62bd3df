// `npx tsx scripts/gallery.ts [--model FILE] [--out docs/gallery.jpg] [--size 256] [--blend a:0.5,b:0.5] IMG...`:
// content images (default: this repository's own examples/*.png) × every style of a model (default: the embedded
// one) in one labelled grid: a column per style (and one per --blend), a row per image, the content in the first
// column. The README shows it.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { DEFAULT_MODEL } from '../src/api/default-model.js';
import { loadModel } from '../src/api/model-node.js';
import { parseStyle } from '../src/api/styles.js';
import { stylizeImage } from '../src/api/stylize.js';
import { Gpu } from '../src/gpu/index.js';
import { toRGBA, type Image } from '../src/io/image.js';
import { readImage } from '../src/io/image-node.js';
import { resizeShorterSide } from '../src/io/resize.js';
import type { StyleBlend } from '../src/nets/transformer-net.js';

const { values: a, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: 'string' },
    out: { type: 'string', default: 'docs/gallery.jpg' },
    size: { type: 'string', default: '256' },
    blend: { type: 'string', multiple: true },
  },
});
const examples = fileURLToPath(new URL('../examples/', import.meta.url));
const inputs = positionals.length ? positionals : readdirSync(examples).filter((f) => f.endsWith('.png')).sort().map((f) => examples + f);
const size = Number(a.size);
const LABEL = 28;

const gpu = await Gpu.create();
try {
  const net = await loadModel(gpu, a.model ?? fileURLToPath(DEFAULT_MODEL.url));
  const names = net.styleInfo.map((s) => s.name);
  const columns: { label: string; style: StyleBlend | null }[] = [
    { label: 'content', style: null },
    ...names.map((n, i) => ({ label: n, style: i })),
    ...(a.blend ?? []).map((b) => ({ label: b.replace(/,/g, ' + '), style: parseStyle(b, names) })),
  ];
  const tiles: { input: Buffer; left: number; top: number }[] = [];
  let width = 0;
  let top = LABEL;
  for (const file of inputs) {
    const content = resizeShorterSide(await readImage(file), size);
    const { width: w, height: h } = content;
    let left = 0;
    for (const c of columns) {
      const img: Image = c.style === null ? content : await stylizeImage(gpu, net, content, { style: c.style });
      tiles.push({ input: await sharp(Buffer.from(toRGBA(img).buffer), { raw: { width: w, height: h, channels: 4 } }).png().toBuffer(), left, top });
      console.error(`${file} × ${c.label}`);
      left += w;
    }
    width = Math.max(width, left);
    top += h;
  }
  const colWidth = width / columns.length;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const labels = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${LABEL}">${columns
    .map((c, i) => `<text x="${(i + 0.5) * colWidth}" y="${LABEL - 9}" font-family="sans-serif" font-size="15" text-anchor="middle" fill="#222">${esc(c.label)}</text>`)
    .join('')}</svg>`;
  await sharp({ create: { width, height: top, channels: 3, background: '#ffffff' } })
    .composite([{ input: Buffer.from(labels), left: 0, top: 0 }, ...tiles])
    .jpeg({ quality: 88 })
    .toFile(a.out!);
  console.error(`wrote ${a.out} (${width}×${top})`);
  net.dispose();
} finally {
  gpu.destroy();
}
