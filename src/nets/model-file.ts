// Model files of the transformation network: safetensors written here (with the architecture in
// __metadata__), and safetensors or torch.save checkpoints (e.g. pytorch/examples' fast_neural_style models)
// read back. The architecture comes from opts, else the file's metadata, else the tensor names and shapes.
import type { Gpu } from '../gpu/index.js';
import { assertFinite } from '../io/finite.js';
import { WeightFileError, checkTensors, writeSafetensors, type LoadedTensor, type WriteSafetensorsOptions } from '../io/safetensors.js';
import { readWeightBytes } from '../io/weight-file.js';
import { TRANSFORMER_NORMS, TRANSFORMER_VARIANTS, TransformerNet, type StyleInfo, type TransformerNorm, type TransformerVariant } from './transformer-net.js';

export const TRANSFORMER_ARCH = 'transformer-net';

/** The metadata keys saveTransformerNet owns; extra metadata cannot override them. */
const RESERVED = ['arch', 'variant', 'norm', 'width', 'styles', 'output'];

/**
 * The network's parameters and buffers as a safetensors file. Metadata: arch "transformer-net", variant,
 * norm, width, plus `extra` (free-form strings, e.g. the training command or the style image's name).
 */
export async function saveTransformerNet(net: TransformerNet, extra: Record<string, string> = {}, opts: WriteSafetensorsOptions = {}): Promise<Uint8Array> {
  for (const k of RESERVED) {
    if (k in extra) throw new Error(`saveTransformerNet: metadata key "${k}" is set from the network and cannot be given`);
  }
  const tensors = new Map<string, { data: Float32Array; shape: readonly number[] }>();
  for (const [name, t] of net.stateDict()) tensors.set(name, { data: await t.data(), shape: t.shape });
  assertFinite(tensors, 'saveTransformerNet: refusing to save non-finite weights');
  return writeSafetensors(tensors, {
    ...extra,
    arch: TRANSFORMER_ARCH,
    variant: net.variant,
    norm: net.norm,
    width: String(net.width),
    ...(net.styles > 1 ? { styles: String(net.styles) } : {}),
    ...(net.variant !== 'paper' && net.output === 'tanh' ? { output: 'tanh' } : {}),
  }, opts);
}

export interface LoadTransformerNetOptions {
  /** The variant; overrides the file's metadata (needed for files that have none and unusual names). */
  arch?: TransformerVariant;
  norm?: TransformerNorm;
  width?: number;
  /** Names the source in error messages. */
  file?: string;
}

export interface TransformerArch {
  variant: TransformerVariant;
  norm: TransformerNorm;
  width: number;
  styles: number;
  output: 'linear' | 'tanh';
}

/** pytorch/examples' neural_style.py drops these keys (saved by old PyTorch versions for InstanceNorm2d). */
const STALE_IN_STATS = /in\d+\.running_(mean|var)$/;

/**
 * Which network a file holds: opts first, then __metadata__ (variant, norm, width), then the tensors:
 * `conv1.conv2d.weight` means pytorch-examples, `conv1.weight` the paper's; width from conv1's out-channels;
 * norm (paper) batch when `norm1.running_mean` is present, else instance.
 */
export function inferTransformerArch(
  tensors: ReadonlyMap<string, { shape: readonly number[] }>,
  metadata: Record<string, string>,
  opts: LoadTransformerNetOptions = {},
): TransformerArch {
  const file = opts.file ?? 'model file';
  if (metadata.arch !== undefined && metadata.arch !== TRANSFORMER_ARCH) {
    throw new WeightFileError(`${file}: this file holds a ${metadata.arch} network (__metadata__.arch), not ${TRANSFORMER_ARCH}`);
  }
  const known = (what: string, v: string | undefined, list: readonly string[], from: string) => {
    if (v !== undefined && !list.includes(v)) {
      throw new WeightFileError(`${file}: unknown ${what} "${v}"${from} (known: ${list.join(', ')})`);
    }
  };
  known('arch', opts.arch, TRANSFORMER_VARIANTS, '');
  known('norm', opts.norm, TRANSFORMER_NORMS, '');
  known('variant', metadata.variant, TRANSFORMER_VARIANTS, ' in __metadata__.variant; pass the arch option');
  known('norm', metadata.norm, TRANSFORMER_NORMS, ' in __metadata__.norm; pass the norm option');

  let variant = opts.arch ?? (metadata.variant as TransformerVariant | undefined);
  if (!variant) {
    if (tensors.has('conv1.conv2d.weight')) variant = 'pytorch-examples';
    else if (tensors.has('conv1.weight')) variant = 'paper';
    else {
      throw new WeightFileError(
        `${file}: cannot tell the network's variant: no __metadata__.variant and neither conv1.conv2d.weight ` +
          `(pytorch-examples) nor conv1.weight (paper) is present; pass the arch option`,
      );
    }
  }
  const [conv1, norm1] = variant === 'pytorch-examples' ? ['conv1.conv2d.weight', 'in1.weight'] : ['conv1.weight', 'norm1.weight'];
  let width = opts.width;
  if (width === undefined && metadata.width !== undefined) {
    width = Number(metadata.width);
    if (!(Number.isInteger(width) && width >= 1)) throw new WeightFileError(`${file}: __metadata__.width "${metadata.width}" is not a positive integer; pass the width option`);
  }
  if (width === undefined) {
    // conv1's out-channels; without a usable conv1 weight, the default width (the tensor check then lists what is wrong).
    const w = tensors.get(conv1);
    width = w && w.shape.length === 4 && w.shape[0] >= 1 ? w.shape[0] : 32;
  }
  // Conditional instance norm stores one (γ, β) row per style: a 2-D norm weight.
  const n1 = tensors.get(norm1)?.shape;
  const conditional = n1?.length === 2;
  const inferred: TransformerNorm = conditional ? 'conditional-instance' : variant === 'paper' && tensors.has('norm1.running_mean') ? 'batch' : 'instance';
  const norm = opts.norm ?? (metadata.norm as TransformerNorm | undefined) ?? inferred;
  let styles = 1;
  if (metadata.styles !== undefined) {
    styles = Number(metadata.styles);
    if (!(Number.isInteger(styles) && styles >= 1)) throw new WeightFileError(`${file}: __metadata__.styles "${metadata.styles}" is not a positive integer`);
  } else if (norm === 'conditional-instance' && conditional) styles = n1[0];
  const output = metadata.output ?? (variant === 'paper' ? 'tanh' : 'linear');
  if (output !== 'linear' && output !== 'tanh') throw new WeightFileError(`${file}: unknown output "${output}" in __metadata__.output (linear, tanh)`);
  return { variant, norm, width, styles, output };
}

/** Builds a network from tensors already read; mismatched files throw one WeightFileError listing every
 *  missing, unexpected and mis-shaped tensor (expected vs found shape). */
export function transformerNetFromTensors(
  gpu: Gpu,
  tensors: ReadonlyMap<string, LoadedTensor | { data: Float32Array; shape: readonly number[] }>,
  metadata: Record<string, string> = {},
  opts: LoadTransformerNetOptions = {},
): TransformerNet {
  const file = opts.file ?? 'model file';
  const arch = inferTransformerArch(tensors, metadata, opts);
  let entries = new Map(tensors);
  if (arch.variant === 'pytorch-examples') entries = new Map([...entries].filter(([k]) => !STALE_IN_STATS.test(k)));
  const net = new TransformerNet(gpu, { ...arch, rand: () => 0.5 });
  try {
    const expected = new Map(net.stateShapes());
    // Batch-norm step counters are bookkeeping: files without them (other writers, older torch) are fine.
    for (const k of [...expected.keys()]) if (k.endsWith('.num_batches_tracked') && !entries.has(k)) expected.delete(k);
    // Names and shapes first: a file that is the wrong model is refused before its data is read.
    checkTensors(`${file} (${net})`, entries, expected);
    assertFinite(entries, `${file}: refusing to load non-finite weights`);
    net.loadStateDict(entries as Map<string, { data: Float32Array; shape: readonly number[] }>, false);
    net.styleInfo = styleInfoOf(metadata, net.styles);
  } catch (e) {
    net.dispose();
    throw e;
  }
  return net;
}

/** The styles a file describes: __metadata__.style_info (a JSON list, one entry per style), else the training
 *  record's style name(s), else style1, style2, … */
export function styleInfoOf(metadata: Record<string, string>, styles: number): StyleInfo[] {
  const parse = (v: string | undefined): unknown => {
    try {
      return v === undefined ? undefined : JSON.parse(v);
    } catch {
      return undefined;
    }
  };
  const info = parse(metadata.style_info);
  if (Array.isArray(info) && info.length === styles && info.every((e) => e && typeof e.name === 'string')) return info as StyleInfo[];
  const trained = (parse(metadata.training) as { style?: unknown } | undefined)?.style;
  const names = Array.isArray(trained) ? trained : typeof trained === 'string' ? [trained.replace(/\.[^.]+$/, '')] : [];
  return Array.from({ length: styles }, (_, i) => ({ name: typeof names[i] === 'string' && names.length === styles ? names[i] : `style${i + 1}` }));
}

/**
 * Loads a transformation network from a safetensors file or a torch.save checkpoint (told apart by content).
 * The architecture: opts.arch/norm/width, else __metadata__, else inferred from the tensor names and shapes.
 * pytorch/examples checkpoints' stale `inN.running_mean/var` keys are dropped, as its loader does.
 */
export function loadTransformerNet(gpu: Gpu, bytes: Uint8Array, opts: LoadTransformerNetOptions = {}): TransformerNet {
  const file = opts.file ?? 'model file';
  const { tensors, metadata } = readWeightBytes(bytes, file);
  return transformerNetFromTensors(gpu, tensors, metadata, { ...opts, file });
}
