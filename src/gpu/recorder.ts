// Command recording between two submits: one command encoder, one compute pass shared by consecutive
// dispatches (ended by any other command), the uniform arena of the batch, and the profiler's timestamps.
import { UniformArena } from './bind-groups.js';
import type { Kernel } from './kernel.js';
import { Profiler, profileRecord } from './profiler.js';

export class Recorder {
  private enc: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  /** Names of the kernels dispatched since the last submit. */
  kernels: string[] = [];
  readonly uniforms: UniformArena;
  profiler: Profiler | null = null;
  /** Attached to the dispatches recorded while profiling. */
  profileLabel = '';

  constructor(
    private device: GPUDevice,
    /** A compute pass per dispatch, labelled with the kernel (so a validation message names it). */
    private passPerDispatch: boolean,
    arenaBytes: number,
  ) {
    this.uniforms = new UniformArena(device, arenaBytes, device.limits.minUniformBufferOffsetAlignment);
  }

  get empty(): boolean {
    return this.enc === null;
  }

  /** The encoder for a non-dispatch command: ends the open compute pass. */
  encoder(): GPUCommandEncoder {
    this.endPass();
    return (this.enc ??= this.device.createCommandEncoder());
  }

  /** Records a dispatch; false when this batch has no room left for its uniforms or timestamps (submit, retry). */
  dispatch(k: Kernel, bindings: Record<string, unknown>, pipe: GPUComputePipeline, bg: GPUBindGroup, uniform: ArrayBuffer | null, wg: [number, number, number]): boolean {
    const offset = uniform ? this.uniforms.push(uniform) : 0;
    if (offset === null) return false;
    let timestampWrites: GPUComputePassTimestampWrites | undefined;
    if (this.profiler) {
      timestampWrites = this.profiler.next(profileRecord(k, bindings, this.profileLabel)) ?? undefined;
      if (!timestampWrites) return false;
    }
    const own = this.passPerDispatch || !!this.profiler;
    if (own) this.endPass();
    this.pass ??= this.encoder().beginComputePass({ label: own ? k.name : 'dispatches', timestampWrites });
    this.pass.setPipeline(pipe);
    this.pass.setBindGroup(0, bg, uniform ? [offset] : []);
    this.pass.dispatchWorkgroups(...wg);
    // Timestamps bracket a pass: while profiling every dispatch has its own.
    if (own) this.endPass();
    this.kernels.push(k.name);
    return true;
  }

  /** Ends recording: the command buffer to submit and the kernels in it; null when nothing was recorded. */
  finish(): { commands: GPUCommandBuffer; kernels: string[] } | null {
    if (!this.enc) return null;
    this.endPass();
    this.profiler?.resolve(this.enc);
    this.uniforms.upload();
    const out = { commands: this.enc.finish(), kernels: this.kernels };
    this.enc = null;
    this.kernels = [];
    return out;
  }

  /** Drops what was recorded (device gone). */
  reset(): void {
    this.enc = null;
    this.pass = null;
    this.kernels = [];
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }
}
