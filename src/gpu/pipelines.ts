// The pipeline cache: one compute pipeline per (kernel, override constants), never one per call. Creation
// runs inside a validation error scope; a failure becomes a KernelError naming the kernel and the WGSL line.
import type { BindGroups } from './bind-groups.js';
import { KernelError } from './errors.js';
import type { Kernel } from './kernel.js';

export class Pipelines {
  private cache = new Map<string, GPUComputePipeline>();
  private modules = new WeakMap<Kernel, GPUShaderModule>();

  constructor(
    private device: GPUDevice,
    private bindGroups: BindGroups,
    /** Receives the promise of each creation's error (null when it compiled). */
    private onCheck: (p: Promise<Error | null>) => void,
  ) {}

  get(k: Kernel, constants: Record<string, number> = {}): GPUComputePipeline {
    let key = k.name;
    for (const c in constants) key += `|${c}=${constants[c]}`;
    let p = this.cache.get(key);
    if (p) return p;
    for (const c of Object.keys(constants)) {
      if (!k.overrides.has(c)) throw new Error(`kernel ${k.name}: no override constant named ${c}`);
    }
    this.device.pushErrorScope('validation');
    let module = this.modules.get(k);
    if (!module) this.modules.set(k, (module = this.device.createShaderModule({ code: k.code, label: k.name })));
    p = this.device.createComputePipeline({
      label: k.name,
      layout: this.bindGroups.layout(k).pipeline,
      compute: { module, entryPoint: k.entry, constants },
    });
    const shader = module;
    this.onCheck(
      this.device.popErrorScope().then(async (e) => {
        if (!e) return null;
        const info = await shader.getCompilationInfo();
        const lines = k.code.split('\n');
        const msgs = info.messages
          .filter((m) => m.type === 'error')
          .map((m) => `  WGSL line ${m.lineNum}:${m.linePos}: ${m.message}\n    ${(lines[m.lineNum - 1] ?? '').trim()}`);
        return new KernelError(`kernel ${k.name} failed to compile:\n${msgs.length ? msgs.join('\n') : '  ' + e.message}`, k.name);
      }),
    );
    this.cache.set(key, p);
    return p;
  }

  clear(): void {
    this.cache.clear();
  }
}
