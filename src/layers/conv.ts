// Differentiable 2-D convolution and transposed convolution, and their PyTorch-style modules.
// The two ops are each other's input gradient (as in burn and jax): conv2d's dx is a transposed
// convolution of dy with the same weight, convTranspose2d's dx is a conv2d of dy with the same weight.
import type { Tensor } from '../autograd/tensor.js';
import type { Gpu, RawTensor } from '../gpu/index.js';
import { conv2dBackwardBias, conv2dBackwardWeight, conv2dForward } from '../kernels/conv2d.js';
import {
  convTranspose2dBackwardBias,
  convTranspose2dBackwardWeight,
  convTranspose2dForward,
  convTransposeOutSize,
} from '../kernels/conv-transpose2d.js';
import { check, recordOp } from './check.js';
import { Module } from './module.js';

export interface Conv2dOpts {
  stride?: number;
  padding?: number;
}

export interface ConvTranspose2dOpts extends Conv2dOpts {
  /** Extra rows/columns at the bottom/right of the output; must be smaller than stride (as in PyTorch). */
  outputPadding?: number;
}

type Named = Record<string, Tensor>;

function checkCommon(op: string, x: Tensor, w: Tensor, b: Tensor | null, stride: number, padding: number): Named {
  const named: Named = b ? { x, w, b } : { x, w };
  check(x.shape.length === 4, op, 'input must have 4 dimensions (N,C,H,W)', named);
  check(w.shape.length === 4, op, `weight must have 4 dimensions (${op === 'conv2d' ? 'out,in' : 'in,out'},kH,kW)`, named);
  check(Number.isInteger(stride) && stride >= 1, op, `stride must be a positive integer, got ${stride}`, named);
  check(Number.isInteger(padding) && padding >= 0, op, `padding must be a non-negative integer, got ${padding}`, named);
  check(w.shape[2] >= 1 && w.shape[3] >= 1, op, 'kernel size must be at least 1', named);
  return named;
}

/** PyTorch's F.conv2d: x [N, Cin, H, W], w [Cout, Cin, kH, kW], b [Cout] or null → [N, Cout, OH, OW]. */
export function conv2d(x: Tensor, w: Tensor, b: Tensor | null, opts: Conv2dOpts = {}): Tensor {
  const { stride = 1, padding = 0 } = opts;
  const op = 'conv2d';
  const named = checkCommon(op, x, w, b, stride, padding);
  const [, C, H, W] = x.shape;
  const [K, wC, kH, kW] = w.shape;
  check(C === wC, op, `input channels (${C}) must equal weight in-channels (${wC})`, named);
  if (b) check(b.shape.length === 1 && b.shape[0] === K, op, `bias must have shape [${K}] (weight out-channels)`, named);
  check(
    H + 2 * padding >= kH && W + 2 * padding >= kW,
    op,
    `kernel (${kH}×${kW}) larger than padded input (${H + 2 * padding}×${W + 2 * padding}, padding ${padding})`,
    named,
  );
  const gpu = x.gpu;
  const y = conv2dForward(gpu, x.raw, w.raw, b?.raw ?? null, stride, padding);
  const inputs = b ? [x, w, b] : [x, w];
  return recordOp(op, inputs, y, (dy, needs) => {
    const g: (RawTensor | null)[] = [null, null, null];
    if (needs[0]) g[0] = convTranspose2dForward(gpu, dy, w.raw, null, stride, padding, [H, W], 'conv2d input grad');
    if (needs[1]) g[1] = conv2dBackwardWeight(gpu, x.raw, dy, kH, kW, stride, padding);
    if (b && needs[2]) g[2] = conv2dBackwardBias(gpu, dy);
    return g.slice(0, inputs.length);
  });
}

/** PyTorch's F.conv_transpose2d: x [N, Cin, H, W], w [Cin, Cout, kH, kW], b [Cout] or null →
 *  [N, Cout, (H−1)·stride − 2·padding + kH + outputPadding, (W−1)·stride − 2·padding + kW + outputPadding]. */
export function convTranspose2d(x: Tensor, w: Tensor, b: Tensor | null, opts: ConvTranspose2dOpts = {}): Tensor {
  const { stride = 1, padding = 0, outputPadding = 0 } = opts;
  const op = 'convTranspose2d';
  const named = checkCommon(op, x, w, b, stride, padding);
  const [, C, H, W] = x.shape;
  const [wC, K, kH, kW] = w.shape;
  check(C === wC, op, `input channels (${C}) must equal weight in-channels (${wC}, the weight's first dimension)`, named);
  if (b) check(b.shape.length === 1 && b.shape[0] === K, op, `bias must have shape [${K}] (weight out-channels)`, named);
  check(
    Number.isInteger(outputPadding) && outputPadding >= 0 && outputPadding < stride,
    op,
    `outputPadding (${outputPadding}) must be a non-negative integer smaller than stride (${stride})`,
    named,
  );
  const OH = convTransposeOutSize(H, kH, stride, padding, outputPadding);
  const OW = convTransposeOutSize(W, kW, stride, padding, outputPadding);
  check(OH >= 1 && OW >= 1, op, `output size ${OH}×${OW} is not positive (padding ${padding} too large)`, named);
  const gpu = x.gpu;
  const y = convTranspose2dForward(gpu, x.raw, w.raw, b?.raw ?? null, stride, padding, [OH, OW]);
  const inputs = b ? [x, w, b] : [x, w];
  return recordOp(op, inputs, y, (dy, needs) => {
    const g: (RawTensor | null)[] = [null, null, null];
    // conv2d of dy [N, Cout, OH, OW] with w read as OIHW [Cin, Cout, kH, kW] has exactly x's size, as outputPadding < stride.
    if (needs[0]) g[0] = conv2dForward(gpu, dy, w.raw, null, stride, padding, 'convTranspose2d input grad');
    if (needs[1]) g[1] = convTranspose2dBackwardWeight(gpu, x.raw, dy, kH, kW, stride, padding);
    if (b && needs[2]) g[2] = convTranspose2dBackwardBias(gpu, dy);
    return g.slice(0, inputs.length);
  });
}

export interface ConvModuleOpts {
  stride?: number;
  padding?: number;
  bias?: boolean;
  /** Uniform [0, 1) source for the initial weights (seed it for reproducible runs). */
  rand?: () => number;
}

/** U(−bound, bound) samples: PyTorch's kaiming_uniform_(a=√5) gives bound = 1/√fanIn for weight and bias. */
function uniformInit(n: number, bound: number, rand: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * rand() - 1) * bound;
  return out;
}

/** nn.Conv2d: weight [out, in, k, k], bias [out]. */
export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly stride: number;
  readonly padding: number;

  constructor(gpu: Gpu, readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number, opts: ConvModuleOpts = {}) {
    super(gpu);
    const { stride = 1, padding = 0, bias = true, rand = Math.random } = opts;
    this.stride = stride;
    this.padding = padding;
    const bound = 1 / Math.sqrt(inChannels * kernelSize * kernelSize);
    const shape = [outChannels, inChannels, kernelSize, kernelSize];
    this.weight = this.param('weight', uniformInit(outChannels * inChannels * kernelSize * kernelSize, bound, rand), shape);
    this.bias = bias ? this.param('bias', uniformInit(outChannels, bound, rand), [outChannels]) : null;
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
}

export interface ConvTransposeModuleOpts extends ConvModuleOpts {
  outputPadding?: number;
}

/** nn.ConvTranspose2d: weight [in, out, k, k], bias [out]; PyTorch's fan-in here is out·k·k (weight.shape[1]·k·k). */
export class ConvTranspose2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly stride: number;
  readonly padding: number;
  readonly outputPadding: number;

  constructor(gpu: Gpu, readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number, opts: ConvTransposeModuleOpts = {}) {
    super(gpu);
    const { stride = 1, padding = 0, outputPadding = 0, bias = true, rand = Math.random } = opts;
    this.stride = stride;
    this.padding = padding;
    this.outputPadding = outputPadding;
    const bound = 1 / Math.sqrt(outChannels * kernelSize * kernelSize);
    const shape = [inChannels, outChannels, kernelSize, kernelSize];
    this.weight = this.param('weight', uniformInit(inChannels * outChannels * kernelSize * kernelSize, bound, rand), shape);
    this.bias = bias ? this.param('bias', uniformInit(outChannels, bound, rand), [outChannels]) : null;
  }

  forward(x: Tensor): Tensor {
    return convTranspose2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, outputPadding: this.outputPadding });
  }
}
