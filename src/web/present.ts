// Shows an RGB 0..255 image tensor [1,3,H,W] on a WebGPU canvas without reading it back to the CPU: a render
// pass on the engine's own device whose fragment shader reads the NCHW storage buffer directly. Strength and
// colour preservation are applied there too, with the formulas of stylizeImage (src/api/stylize.ts), so moving
// a slider redraws without running the network again.
import type { Tensor } from '../autograd/tensor.js';
import type { Gpu, RawTensor } from '../gpu/index.js';

// One pixel per fragment: the canvas is sized to the image, so @builtin(position) is the pixel's centre.
// YIQ matrices as in stylize.ts (NTSC, Gatys et al.'s luminance-only transfer).
const SHADER = /* wgsl */ `
@group(0) @binding(0) var<storage, read> styled: array<f32>;
@group(0) @binding(1) var<storage, read> content: array<f32>;
// width, height, strength, preserveColor (0 or 1)
@group(0) @binding(2) var<storage, read> params: array<f32, 4>;

@vertex fn vs(@builtin(vertex_index) i: u32) -> @builtin(position) vec4f {
  let p = vec2f(f32((i << 1u) & 2u), f32(i & 2u));
  return vec4f(p * 2.0 - 1.0, 0.0, 1.0);
}

fn styledAt(i: u32, n: u32) -> vec3f { return vec3f(styled[i], styled[n + i], styled[2u * n + i]); }
fn contentAt(i: u32, n: u32) -> vec3f { return vec3f(content[i], content[n + i], content[2u * n + i]); }

@fragment fn fs(@builtin(position) pos: vec4f) -> @location(0) vec4f {
  let w = u32(params[0]);
  let n = w * u32(params[1]);
  let i = u32(pos.y) * w + u32(pos.x);
  var s = styledAt(i, n);
  let c = contentAt(i, n);
  if (params[3] > 0.5) {
    let y = dot(vec3f(0.299, 0.587, 0.114), s);
    let iq = vec2f(dot(vec3f(0.595716, -0.274453, -0.321263), c), dot(vec3f(0.211456, -0.522591, 0.311135), c));
    s = vec3f(y + dot(vec2f(0.9563, 0.621), iq), y + dot(vec2f(-0.2721, -0.6474), iq), y + dot(vec2f(-1.107, 1.7046), iq));
  }
  let k = params[2];
  return vec4f(clamp(k * s + (1.0 - k) * c, vec3f(0.0), vec3f(255.0)) / 255.0, 1.0);
}
`;

export interface PresentOptions {
  /** The network's input, needed when strength < 1 or preserveColor. */
  content?: Tensor;
  /** 0..1: blend of the stylized image (1) with the content (0). */
  strength?: number;
  /** Keep the content's colours (the stylized luminance with the content's chrominance, YIQ). */
  preserveColor?: boolean;
}

export class TensorPresenter {
  private params: RawTensor;

  private constructor(
    readonly gpu: Gpu,
    readonly canvas: HTMLCanvasElement | OffscreenCanvas,
    private context: GPUCanvasContext,
    private pipeline: GPURenderPipeline,
  ) {
    this.params = gpu.empty([4], 'present params');
  }

  /** Configures `canvas` for the engine's device; rejects if the shader or pipeline fails validation. */
  static async create(gpu: Gpu, canvas: HTMLCanvasElement | OffscreenCanvas, format = navigator.gpu.getPreferredCanvasFormat()): Promise<TensorPresenter> {
    const device = gpu.device;
    const context = canvas.getContext('webgpu') as GPUCanvasContext | null;
    if (!context) throw new Error('TensorPresenter: the canvas has no webgpu context (is it already used for 2d?)');
    context.configure({ device, format, alphaMode: 'opaque' });
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code: SHADER, label: 'present' });
    const pipeline = device.createRenderPipeline({
      label: 'present',
      layout: 'auto',
      vertex: { module, entryPoint: 'vs' },
      fragment: { module, entryPoint: 'fs', targets: [{ format }] },
      primitive: { topology: 'triangle-list' },
    });
    const err = await device.popErrorScope();
    if (err) throw new Error(`TensorPresenter: render pipeline failed: ${err.message}`);
    return new TensorPresenter(gpu, canvas, context, pipeline);
  }

  /** Draws `image` ([1,3,H,W], RGB 0..255) at its own size; the canvas is resized to H×W. */
  draw(image: Tensor, opts: PresentOptions = {}): void {
    const strength = opts.strength ?? 1;
    if (!(strength >= 0 && strength <= 1)) throw new Error(`present: strength must be between 0 and 1, got ${opts.strength}`);
    const [n, c, h, w] = image.shape;
    if (image.shape.length !== 4 || n !== 1 || c !== 3) throw new Error(`present: expected one RGB image [1,3,H,W], got [${image.shape.join(',')}]`);
    const needsContent = strength < 1 || !!opts.preserveColor;
    if (needsContent && !opts.content) throw new Error('present: strength < 1 and preserveColor need the content image');
    const content = opts.content ?? image;
    if (content.shape.join() !== image.shape.join()) {
      throw new Error(`present: content [${content.shape.join(',')}] and image [${image.shape.join(',')}] differ in shape`);
    }
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    const device = this.gpu.device;
    device.queue.writeBuffer(this.params.buffer, 0, new Float32Array([w, h, strength, opts.preserveColor ? 1 : 0]));
    const size = 3 * h * w * 4;
    const bindings = device.createBindGroup({
      layout: this.pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: image.raw.buffer, size } },
        { binding: 1, resource: { buffer: content.raw.buffer, size } },
        { binding: 2, resource: { buffer: this.params.buffer, size: 16 } },
      ],
    });
    // The engine records kernels in its own encoder: submit them first so this pass sees their results.
    this.gpu.flush();
    const encoder = device.createCommandEncoder({ label: 'present' });
    const pass = encoder.beginRenderPass({
      colorAttachments: [{ view: this.context.getCurrentTexture().createView(), loadOp: 'clear', storeOp: 'store', clearValue: [0, 0, 0, 1] }],
    });
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindings);
    pass.draw(3);
    pass.end();
    device.queue.submit([encoder.finish()]);
  }

  dispose(): void {
    this.gpu.release(this.params);
    this.context.unconfigure();
  }
}
