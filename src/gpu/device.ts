// Device acquisition, the only place that knows whether we run in Node (Dawn, npm `webgpu`) or a browser.
import { NoAdapterError } from './errors.js';

export interface AcquiredDevice {
  device: GPUDevice;
  adapter: GPUAdapter;
  /** Dawn's GPU object in Node: keeps the process alive while referenced, so dropped on destroy. */
  release(): void;
}

export interface DeviceOptions {
  /** 'high-performance' picks a discrete GPU where there are several. */
  powerPreference?: GPUPowerPreference;
  /** Ask for these optional features when the adapter has them (others are ignored). */
  optionalFeatures?: GPUFeatureName[];
  /** Dawn toggles/flags, Node only (e.g. 'enable-dawn-features=...'). */
  dawnFlags?: string[];
}

const WANTED_FEATURES: GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'] as GPUFeatureName[];

const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof (globalThis as { window?: unknown }).window === 'undefined';

async function nodeGpu(flags: string[]): Promise<{ gpu: GPU; release(): void }> {
  // A variable specifier keeps bundlers from pulling Dawn's native addon into the browser build.
  const mod = 'webgpu';
  const dawn = (await import(/* @vite-ignore */ mod)) as { create(flags: string[]): GPU; globals: object };
  // Dawn's classes (GPUBufferUsage, GPUMapMode, ...) are globals in a browser; make them so in Node too.
  for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  if (typeof process !== 'undefined' && process.platform === 'linux' && !process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';
  let gpu: GPU | null = dawn.create(flags);
  return { gpu: gpu!, release: () => { gpu = null; } };
}

/** The flags headless Chromium needs for WebGPU without a GPU (SwiftShader), as test/browser/chromium.ts passes them. */
export const HEADLESS_CHROMIUM_FLAGS = '--enable-unsafe-webgpu --enable-features=Vulkan --use-angle=swiftshader --use-vulkan=swiftshader --disable-gpu-sandbox';

let requests = 0;

/** How many times this process asked for an adapter: a command refused for bad usage or inputs never does (tests). */
export const adapterRequests = (): number => requests;

/** Requests the adapter's full limits and the optional features it has. */
export async function acquireDevice(opts: DeviceOptions = {}): Promise<AcquiredDevice> {
  requests++;
  let gpu: GPU;
  let release = () => {};
  if (typeof navigator !== 'undefined' && (navigator as { gpu?: GPU }).gpu && !isNode) {
    gpu = (navigator as { gpu: GPU }).gpu;
  } else if (isNode) {
    ({ gpu, release } = await nodeGpu(opts.dawnFlags ?? []));
  } else {
    throw new NoAdapterError(
      'WebGPU is not available in this environment (no navigator.gpu): it needs Chrome or Edge 113+ on a page served ' +
        `from https or http://localhost; headless Chromium without a GPU needs ${HEADLESS_CHROMIUM_FLAGS}.`,
    );
  }
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) {
    release();
    throw new NoAdapterError(
      isNode
        ? 'No WebGPU adapter: Dawn found no usable Vulkan/Metal/D3D12 driver. On Linux without a GPU, install Mesa\'s ' +
            "lavapipe (Vulkan on the CPU, mesa-vulkan-drivers >= 23): 'bash .ci/install-lavapipe.sh' in a clone of " +
            "perceptual-webgpu (Debian; it uses sudo when not root), elsewhere your distribution's mesa-vulkan-drivers. " +
            "The CLI's --verbose shows the driver's own messages."
        : 'No WebGPU adapter: this browser exposes navigator.gpu but returned no adapter. Without a GPU, headless ' +
            `Chromium needs ${HEADLESS_CHROMIUM_FLAGS} (and --no-sandbox as root).`,
    );
  }
  const requiredFeatures = [...WANTED_FEATURES, ...(opts.optionalFeatures ?? [])].filter((f) => adapter.features.has(f));
  // Ask for every limit at the adapter's maximum: the defaults (e.g. 128 MiB storage bindings) are lower
  // than many adapters offer, and large images need what the hardware has.
  const requiredLimits: Record<string, number> = {};
  const lim = adapter.limits as unknown as Record<string, number>;
  for (const key in lim) {
    const v = lim[key];
    if (typeof v === 'number') requiredLimits[key] = v;
  }
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'perceptual-webgpu' });
  return { device, adapter, release };
}

/** Whether the adapter runs on the CPU (lavapipe, SwiftShader: a workgroup there is a loop over SIMD lanes), and
 *  its SIMD width (the subgroup size it reports, else 8). */
export function adapterTraits(adapter: GPUAdapter): { software: boolean; simd: number } {
  const i = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean; subgroupMaxSize?: number };
  const software =
    !!(i.isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter) ||
    /llvmpipe|lavapipe|swiftshader|software/i.test(`${i.architecture} ${i.device} ${i.description}`);
  const simd = i.subgroupMaxSize && i.subgroupMaxSize >= 4 && i.subgroupMaxSize <= 64 ? i.subgroupMaxSize : 8;
  return { software, simd };
}
