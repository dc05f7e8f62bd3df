// Real-time stylizing of frames: upload, run the network, draw the output tensor to a canvas. Nothing is read
// back; the last frame's input and output stay on the GPU so strength and colour changes only redraw.
import { noGrad, tidy, type Tensor } from '../autograd/tensor.js';
import type { Gpu } from '../gpu/index.js';
import { imageToTensor, type Image } from '../io/image.js';
import type { ImageNetwork } from '../api/tiled.js';
import type { StyleBlend } from '../nets/transformer-net.js';
import type { TensorPresenter } from './present.js';

export interface Look {
  strength: number;
  preserveColor: boolean;
  /** A multi-style model's style or blend (a change runs the network again; the others only redraw). */
  style?: StyleBlend;
}

/** Frames per second over a sliding window of recent frames. */
export class FpsMeter {
  private times: number[] = [];

  constructor(private windowMs = 2000) {}

  tick(now = performance.now()): void {
    this.times.push(now);
    while (this.times.length > 2 && now - this.times[0] > this.windowMs) this.times.shift();
  }

  get fps(): number {
    const t = this.times;
    return t.length < 2 ? 0 : ((t.length - 1) * 1000) / (t[t.length - 1] - t[0]);
  }

  reset(): void {
    this.times = [];
  }
}

export class FrameStylizer {
  private frame: { input: Tensor; output: Tensor } | null = null;
  readonly meter = new FpsMeter();
  /** Milliseconds of the last frame: upload, network, draw, until the GPU finished. */
  lastMs = 0;

  constructor(
    readonly gpu: Gpu,
    readonly presenter: TensorPresenter,
  ) {}

  /** Stylizes one frame and draws it; resolves when the GPU has finished it, so one frame is in flight at a time. */
  async run(net: ImageNetwork, image: Image, look: Look): Promise<void> {
    const t0 = performance.now();
    const input = imageToTensor(this.gpu, image);
    let output: Tensor;
    try {
      output = noGrad(() => tidy(() => net.forward(input, { style: look.style })));
    } catch (e) {
      input.dispose();
      throw e;
    }
    this.frame?.input.dispose();
    this.frame?.output.dispose();
    this.frame = { input, output };
    this.redraw(look);
    await this.gpu.sync();
    const t1 = performance.now();
    this.lastMs = t1 - t0;
    this.meter.tick(t1);
  }

  /** Draws the last frame again with another look (no network run). */
  redraw(look: Look): void {
    if (this.frame) this.presenter.draw(this.frame.output, { content: this.frame.input, ...look });
  }

  /** The last output as floats (a readback, for tests and downloads; the display path never reads back). */
  async readOutput(): Promise<{ width: number; height: number; data: Float32Array } | null> {
    if (!this.frame) return null;
    const [, , height, width] = this.frame.output.shape;
    return { width, height, data: await this.frame.output.data() };
  }

  dispose(): void {
    this.frame?.input.dispose();
    this.frame?.output.dispose();
    this.frame = null;
  }
}
