// `npx tsx scripts/ship-style-model.ts RUN/model.safetensors models/NAME.safetensors`: a trained style model as it
// ships: weights stored as f16 (half the bytes; the reader widens them to f32), the training record kept, and each
// style's title, artist, source and licence in __metadata__.style_info (what `perceptual styles` and the demo page
// show), from the table below for the public-domain paintings of ../shared/data/styles.
import { readFileSync, writeFileSync } from 'node:fs';
import { Gpu } from '../src/gpu/index.js';
import { readWeightBytes } from '../src/io/weight-file.js';
import { loadTransformerNet, saveTransformerNet, styleInfoOf } from '../src/nets/model-file.js';

const SOURCE = 'jcjohnson/fast-neural-style, images/styles';
const KNOWN: Record<string, Record<string, string>> = {
  starry_night: { title: 'The Starry Night', artist: 'Vincent van Gogh', year: '1889', source: SOURCE, licence: 'public domain' },
  starry_night_crop: { title: 'The Starry Night (crop)', artist: 'Vincent van Gogh', year: '1889', source: SOURCE, licence: 'public domain' },
  great_wave_crop: { title: 'The Great Wave off Kanagawa (crop)', artist: 'Katsushika Hokusai', year: 'c. 1831', source: SOURCE, licence: 'public domain' },
  the_scream: { title: 'The Scream', artist: 'Edvard Munch', year: '1893', source: SOURCE, licence: 'public domain' },
  composition_vii: { title: 'Composition VII', artist: 'Wassily Kandinsky', year: '1913', source: SOURCE, licence: 'public domain (in most jurisdictions)' },
};

const [src, dst] = process.argv.slice(2);
if (!src || !dst) throw new Error('usage: ship-style-model.ts IN.safetensors OUT.safetensors');
const bytes = new Uint8Array(readFileSync(src));
const { metadata } = readWeightBytes(bytes, src);
const gpu = await Gpu.create();
try {
  const net = loadTransformerNet(gpu, bytes, { file: src });
  const info = styleInfoOf(metadata, net.styles).map((s) => ({ ...(KNOWN[s.name] ?? {}), ...s }));
  const { training } = metadata;
  writeFileSync(dst, await saveTransformerNet(net, { ...(training ? { training } : {}), style_info: JSON.stringify(info) }, { dtype: 'F16' }));
  console.log(`${dst}: ${net.styles} style(s), ${info.map((s) => s.name).join(', ')}; ${(readFileSync(dst).length / 1e6).toFixed(2)} MB`);
  net.dispose();
} finally {
  gpu.destroy();
}
