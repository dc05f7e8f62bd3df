// Training a style model in the page: the user's content images and style image, a loss network from a weights
// file, Adam and the perceptual losses, one step at a time (optimizationStep, as the Node trainer), so the page
// can show progress and the loss curve between steps and stop anywhere. No files: the model comes out as
// safetensors bytes. Contents are resized (shorter side) and centre-cropped to `size`, as ImageFolder does.
import { keep, tidy } from '../autograd/tensor.js';
import type { Gpu } from '../gpu/index.js';
import { centerCrop, imagesToNCHW, imageToTensor, type Image } from '../io/image.js';
import { resizeShorterSide } from '../io/resize.js';
import type { LossNetwork } from '../nets/loss-network.js';
import { saveTransformerNet } from '../nets/model-file.js';
import { TransformerNet } from '../nets/transformer-net.js';
import { Adam } from '../train/adam.js';
import { StyleTransferLoss, type StyleLossOptions } from '../train/perceptual-loss.js';
import { lossPlotSvg, type LossRecord, type PlotOptions } from '../train/plot.js';
import { Rng } from '../train/rng.js';
import { RecordedStep } from '../train/step.js';

export interface StyleTrainerOptions extends StyleLossOptions {
  style: Image;
  contents: readonly Image[];
  lossNet: LossNetwork;
  /** Training crop size (default 128). */
  size?: number;
  /** Network width: 32 is the paper's, 16 half (default 16). */
  width?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
}

export class StyleTrainer {
  readonly model: TransformerNet;
  /** One record per step: {step, total, content, style, tv}. */
  readonly records: LossRecord[] = [];
  readonly config: Record<string, unknown>;
  private optimizer: Adam;
  private step_: RecordedStep;
  private loss: StyleTransferLoss;
  private crops: Image[];
  private rng: Rng;
  private order: number[] = [];
  private readonly batchSize: number;

  constructor(
    readonly gpu: Gpu,
    o: StyleTrainerOptions,
  ) {
    const size = o.size ?? 128;
    const width = o.width ?? 16;
    const seed = o.seed ?? 0;
    const batchSize = o.batchSize ?? 1;
    if (!o.contents.length) throw new Error('StyleTrainer: no content images');
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`StyleTrainer: batchSize must be a positive integer, got ${o.batchSize}`);
    this.rng = new Rng(seed);
    this.crops = o.contents.map((img) => centerCrop(resizeShorterSide(img, size), size));
    this.model = new TransformerNet(gpu, { variant: 'paper', norm: 'instance', width, rand: () => this.rng.next() });
    this.optimizer = new Adam(this.model.parameters(), { lr: o.lr ?? 1e-3 });
    this.step_ = new RecordedStep(this.optimizer, 'StyleTrainer');
    const style = tidy(() => keep(imageToTensor(gpu, resizeShorterSide(o.style, size))));
    try {
      this.loss = new StyleTransferLoss(o.lossNet, style, o);
    } finally {
      style.dispose();
    }
    const l = this.loss;
    this.config = {
      kind: 'style', arch: 'paper', norm: 'instance', width, size, batchSize, lr: o.lr ?? 1e-3, lossNet: o.lossNet.name,
      contentLayers: l.contentLayers, styleLayers: l.styleLayers, contentWeight: l.contentWeight, styleWeight: l.styleWeight,
      tvWeight: l.tvWeight, seed, images: this.crops.length, trainedIn: 'browser',
    };
    this.batchSize = batchSize;
  }

  get step(): number {
    return this.records.length;
  }

  /** The next batch: every crop once per epoch, in a new random order each epoch. */
  private nextBatch(): Image[] {
    const batch: Image[] = [];
    while (batch.length < this.batchSize) {
      if (!this.order.length) {
        this.order = this.crops.map((_, i) => i);
        for (let i = this.order.length - 1; i > 0; i--) {
          const j = this.rng.int(i + 1);
          [this.order[i], this.order[j]] = [this.order[j], this.order[i]];
        }
      }
      batch.push(this.crops[this.order.pop()!]);
    }
    return batch;
  }

  /** One Adam step; throws NonFiniteLossError (the step not applied) when a term is NaN or infinite. The first
   *  step's forward and backward are recorded and replayed after (RecordedStep): in a page, the JS time per step
   *  is what it saves. */
  async trainStep(): Promise<LossRecord> {
    this.model.train();
    const values = await this.step_.run(
      async (batch) => {
        const x = await batch();
        const { total, content, style, tv } = this.loss.compute(this.model.forward(x), x);
        return { total, content, style, tv };
      },
      async () => imagesToNCHW(this.nextBatch()),
    );
    const record = { step: this.step + 1, ...values };
    this.records.push(record);
    return record;
  }

  /** The loss curves so far as an SVG string. */
  plot(opts: PlotOptions = {}): string {
    return lossPlotSvg(this.records, opts);
  }

  /** The model as a safetensors file (architecture and training settings in its metadata), for loadModel. */
  async save(): Promise<Uint8Array> {
    return saveTransformerNet(this.model, { training: JSON.stringify({ ...this.config, steps: this.step }) });
  }

  /** Frees everything but the model when `keepModel` (e.g. to go on stylizing with it). */
  dispose(keepModel = false): void {
    this.step_.dispose();
    this.loss.dispose();
    this.optimizer.dispose();
    if (!keepModel) this.model.dispose();
  }
}
