// Choosing a style of a (multi-style) model by name: "the_scream", an index "2", or a blend "starry_night:0.7,
// the_scream:0.3" (weights normalised to sum 1). Shared by the CLI and the browser page.
import type { StyleBlend, TransformerNet } from '../nets/transformer-net.js';

/** The blend `spec` names, for a model whose styles are `names` (in order). Errors list the known names. */
export function parseStyle(spec: string, names: readonly string[]): StyleBlend {
  const known = () => `the model's styles: ${names.join(', ')}`;
  const index = (name: string): number => {
    const n = name.trim();
    const i = names.indexOf(n);
    if (i >= 0) return i;
    if (/^\d+$/.test(n) && Number(n) < names.length) return Number(n);
    throw new Error(`unknown style '${n}' (${known()})`);
  };
  const parts = spec.split(',').filter((p) => p.trim() !== '');
  if (!parts.length) throw new Error(`no style given (${known()})`);
  if (parts.length === 1 && !parts[0].includes(':')) return index(parts[0]);
  const w = new Array<number>(names.length).fill(0);
  for (const p of parts) {
    const [name, weight = '1'] = p.split(':');
    const v = Number(weight);
    if (!(weight.trim() !== '' && Number.isFinite(v) && v >= 0)) throw new Error(`style weight '${weight}' of '${name.trim()}' is not a non-negative number`);
    w[index(name)] += v;
  }
  if (!(w.reduce((a, b) => a + b, 0) > 0)) throw new Error(`the style weights in '${spec}' sum to 0`);
  return w;
}

/** parseStyle against a loaded model's style names. */
export const styleOf = (net: TransformerNet, spec: string): StyleBlend => parseStyle(spec, net.styleInfo.map((s) => s.name));
