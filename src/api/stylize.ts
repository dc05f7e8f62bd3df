// Stylizing one image with a trained transformation network: any size (tiled past the device's limits; images
// smaller than the network's minimum reflect-padded up to it and cropped back), optional colour preservation and
// strength; an alpha channel is carried over unchanged.
import type { Gpu } from '../gpu/index.js';
import { createImage, crop, type Image } from '../io/image.js';
import { TRANSFORMER_MIN_SIZE } from '../nets/transformer-net.js';
import { padReflect, runImageNetwork, type ImageNetwork, type TileOptions, type TileProgress } from './tiled.js';

export interface StylizeOptions extends TileOptions {
  /** Where the run is, in units of one tile through one stage (an image run in one piece is one unit): the figures
   *  the CLI's progress line shows. Called after each unit. */
  onProgress?: (p: TileProgress) => void;
  /** Keep the content's colours: the stylized luminance with the content's chrominance (YIQ), as in
   *  Gatys et al., "Preserving Color in Neural Artistic Style Transfer" (2016). */
  preserveColor?: boolean;
  /** 0..1: blend of the stylized image (1) with the content (0). */
  strength?: number;
}

// NTSC YIQ (the colour space Gatys et al. used for luminance-only transfer).
const RGB2YIQ = [
  [0.299, 0.587, 0.114],
  [0.595716, -0.274453, -0.321263],
  [0.211456, -0.522591, 0.311135],
];
const YIQ2RGB = [
  [1, 0.9563, 0.621],
  [1, -0.2721, -0.6474],
  [1, -1.107, 1.7046],
];

/** Luminance of `styled` with the chrominance of `content`. */
export function transferLuminance(styled: Image, content: Image): Image {
  const n = content.width * content.height;
  const out = createImage(content.width, content.height);
  const s = styled.data;
  const c = content.data;
  for (let i = 0; i < n; i++) {
    const y = RGB2YIQ[0][0] * s[i] + RGB2YIQ[0][1] * s[n + i] + RGB2YIQ[0][2] * s[2 * n + i];
    const iq = [1, 2].map((k) => RGB2YIQ[k][0] * c[i] + RGB2YIQ[k][1] * c[n + i] + RGB2YIQ[k][2] * c[2 * n + i]);
    for (let ch = 0; ch < 3; ch++) out.data[ch * n + i] = YIQ2RGB[ch][0] * y + YIQ2RGB[ch][1] * iq[0] + YIQ2RGB[ch][2] * iq[1];
  }
  return out;
}

export async function stylizeImage(gpu: Gpu, net: ImageNetwork, content: Image, opts: StylizeOptions = {}): Promise<Image> {
  const strength = opts.strength ?? 1;
  if (!(strength >= 0 && strength <= 1)) throw new Error(`stylize: strength must be between 0 and 1, got ${opts.strength}`);
  const { width: W, height: H } = content;
  if (W < 1 || H < 1) throw new Error(`stylize: empty image ${W}×${H}`);
  // A 1×1 or 3×3 image is mirrored up to the smallest input the network takes, and cropped back after.
  const input = padReflect(content, Math.max(0, TRANSFORMER_MIN_SIZE - W), Math.max(0, TRANSFORMER_MIN_SIZE - H));
  let tiled = false;
  const onTile = (p: TileProgress) => {
    tiled = true;
    opts.onTile?.(p);
    opts.onProgress?.(p);
  };
  let out = await runImageNetwork(gpu, net, input, { ...opts, onTile });
  if (!tiled) opts.onProgress?.({ done: 1, total: 1, stage: 1, stages: 1, tile: 1, tiles: 1 });
  if (input !== content) out = crop(out, 0, 0, W, H);
  if (opts.preserveColor) out = transferLuminance(out, content);
  const d = out.data;
  for (let i = 0; i < d.length; i++) d[i] = Math.min(255, Math.max(0, strength * d[i] + (1 - strength) * content.data[i]));
  return content.alpha ? { ...out, alpha: content.alpha } : out;
}
