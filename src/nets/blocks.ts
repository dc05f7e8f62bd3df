// The image-to-image networks (TransformerNet, SRNet) written as the paper's tables: named rows of layers run in
// order, a residual block being itself a list of layers whose input is added back (centre-cropped when its
// convs are unpadded). One interpreter runs every such table:
// * memory: in inference each row runs in a tidy scope and its consumed input is freed, so a block's forward is
//   just its formula; in training the tape keeps what backward needs and the step's scope frees it;
// * instance norm is where the interpreter yields (`walk` is a generator): a plain forward normalises at once,
//   while tiled inference (api/tiled.ts) pauses every tile there, gathers whole-image statistics, and resumes.
import { isGradEnabled, tidy, type Tensor } from '../autograd/tensor.js';
import type { Gpu } from '../gpu/index.js';
import { Conv2d } from '../layers/conv.js';
import { add, relu as reluOp } from '../layers/elementwise.js';
import { Module } from '../layers/module.js';
import { BatchNorm2d, ConditionalInstanceNorm2d, InstanceNorm2d } from '../layers/norm.js';
import { centerCrop2d, reflectionPad2d, upsampleNearest2d } from '../layers/spatial.js';

export type Norm = BatchNorm2d | InstanceNorm2d | ConditionalInstanceNorm2d;
export type NormKind = 'batch' | 'instance' | 'conditional-instance';

/** A parameter-free op in a table (relu, padding, the output activation). */
export interface Op {
  readonly op: string;
  apply(x: Tensor): Tensor;
}
export type Layer = Module & { forward(x: Tensor): Tensor };
export type Stage = Layer | Norm | Op | ResidualBlock;
/** One row of a network's table: its name (traced) and its stages. */
export type Row = readonly [name: string, stages: readonly Stage[]];

export const relu: Op = { op: 'relu', apply: reluOp };

/** Options of a norm layer: conditional instance norm has one (γ, β) row per style. */
export function makeNorm(gpu: Gpu, c: number, norm: NormKind, styles = 1): Norm {
  if (norm === 'batch') return new BatchNorm2d(gpu, c);
  if (norm === 'conditional-instance') return new ConditionalInstanceNorm2d(gpu, c, styles);
  return new InstanceNorm2d(gpu, c, { affine: true });
}

/** pytorch/examples ConvLayer: [nearest ×upsample, then] ReflectionPad2d(k // 2), then Conv2d (state conv2d.*). */
export class ConvLayer extends Module {
  readonly conv2d: Conv2d;
  constructor(gpu: Gpu, cin: number, cout: number, readonly k: number, stride: number, rand: () => number, readonly upsample = 1) {
    super(gpu);
    this.conv2d = this.child('conv2d', new Conv2d(gpu, cin, cout, k, { stride, rand }));
  }
  forward(x: Tensor): Tensor {
    const up = this.upsample > 1 ? upsampleNearest2d(x, this.upsample) : x;
    return this.conv2d.forward(reflectionPad2d(up, Math.floor(this.k / 2)));
  }
}

/** conv-norm-ReLU-conv-norm plus the identity, no ReLU after the add (Gross & Wilber, as the paper uses it).
 *  `crop` centre-crops the identity when the convs are unpadded (the paper's style network: 2 px per side). */
export class ResidualBlock extends Module {
  readonly body: Stage[];
  constructor(
    gpu: Gpu,
    names: { conv1: string; norm1: string; conv2: string; norm2: string },
    make: { conv: () => Layer; norm: () => Norm },
    readonly crop = 0,
  ) {
    super(gpu);
    const conv1 = this.child(names.conv1, make.conv());
    const norm1 = this.child(names.norm1, make.norm());
    const conv2 = this.child(names.conv2, make.conv());
    const norm2 = this.child(names.norm2, make.norm());
    this.body = [conv1, norm1, relu, conv2, norm2];
  }
}

/** What forward passes to every layer: the style blend of conditional instance norms ([S], constant). */
export interface WalkContext {
  style?: Tensor;
}

/** Where walk pauses: an instance norm about to normalise x. The caller sends back the normalised tensor. */
export interface NormPoint {
  norm: InstanceNorm2d | ConditionalInstanceNorm2d;
  x: Tensor;
  /** Identities of the enclosing residual blocks, waiting for their add: live until then (tiled inference may
   *  move them off the GPU and back, replacing the entries). */
  skips: Tensor[];
}

const isOp = (s: Stage): s is Op => 'op' in s && typeof (s as Op).apply === 'function';

/**
 * Runs the rows on x, yielding at every instance norm; returns the output. `inference` frees every intermediate
 * as soon as it is consumed (never x itself, which belongs to the caller).
 */
export function* walk(rows: readonly Row[], x: Tensor, ctx: WalkContext, inference: boolean, trace?: (name: string, shape: readonly number[]) => void): Generator<NormPoint, Tensor, Tensor> {
  const skips: Tensor[] = [];
  const scoped = <T extends Tensor>(f: () => T): T => (inference ? tidy(f) : f());
  const consume = (t: Tensor) => {
    if (inference && t !== x && !skips.includes(t)) t.dispose();
  };
  function* stages(list: readonly Stage[], h: Tensor): Generator<NormPoint, Tensor, Tensor> {
    for (const s of list) {
      let y: Tensor;
      if (s instanceof ResidualBlock) {
        skips.push(h);
        const inner = yield* stages(s.body, h);
        const id = skips.pop()!;
        y = scoped(() => add(s.crop ? centerCrop2d(id, s.crop) : id, inner));
        consume(inner);
        consume(id);
        h = y;
        continue;
      }
      if (s instanceof InstanceNorm2d || s instanceof ConditionalInstanceNorm2d) y = yield { norm: s, x: h, skips };
      else if (isOp(s)) y = scoped(() => s.apply(h));
      else y = scoped(() => s.forward(h));
      consume(h);
      h = y;
    }
    return h;
  }
  let h = x;
  for (const [name, list] of rows) {
    h = yield* stages(list, h);
    trace?.(name, h.shape);
  }
  return h;
}

/** Runs the rows to the end, normalising at once (a plain forward). */
export function runRows(rows: readonly Row[], x: Tensor, ctx: WalkContext, inference: boolean, trace?: (name: string, shape: readonly number[]) => void): Tensor {
  const it = walk(rows, x, ctx, inference, trace);
  let r = it.next();
  while (!r.done) {
    const { norm, x: h } = r.value;
    let y: Tensor;
    try {
      const f = () => (norm instanceof ConditionalInstanceNorm2d ? norm.forward(h, styleOf(norm, ctx)) : norm.forward(h));
      y = inference ? tidy(f) : f();
    } catch (e) {
      it.return(h);
      throw e;
    }
    r = it.next(y);
  }
  return r.value;
}

function styleOf(norm: ConditionalInstanceNorm2d, ctx: WalkContext): Tensor {
  if (!ctx.style) throw new Error(`a network with ${norm.styles} styles needs a style blend: pass { style } to forward`);
  return ctx.style;
}

/** Whether a forward on x keeps no graph (no gradient wanted anywhere): then intermediates are freed as it goes. */
export function isInference(net: Module, x: Tensor): boolean {
  return !isGradEnabled() || (!x.requiresGrad && net.parameters().every((p) => !p.requiresGrad));
}
