// Stylizing one image with a trained transformation network: any size (tiled past the device's limits),
// optional colour preservation and strength.
import type { Gpu } from '../gpu/index.js';
import { createImage, type Image } from '../io/image.js';
import { runImageNetwork, type ImageNetwork, type TileOptions } from './tiled.js';

export interface StylizeOptions extends TileOptions {
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
  let out = await runImageNetwork(gpu, net, content, opts);
  if (opts.preserveColor) out = transferLuminance(out, content);
  const d = out.data;
  for (let i = 0; i < d.length; i++) d[i] = Math.min(255, Math.max(0, strength * d[i] + (1 - strength) * content.data[i]));
  return out;
}
