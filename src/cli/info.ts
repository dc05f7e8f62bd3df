// `perceptual info`: which adapter we run on, what it offers, and whether our kernels compute correctly there.
import { Gpu } from '../gpu/index.js';
import { fmtBytes } from '../gpu/errors.js';
import { command } from './command.js';
import { selfCheck } from './self-check.js';

export const info = command({
  name: 'info',
  summary: 'print the WebGPU adapter (vendor, architecture, features, limits) and run a self-check on it',
  description: 'Prints the WebGPU adapter and runs a small convolution on it, checked against the CPU.',
  options: { json: { type: 'boolean', help: 'print the report as JSON' } },
  run: (values) => report(values.json),
});

async function report(json: boolean | undefined): Promise<number> {
  const gpu = await Gpu.create();
  try {
    const l = gpu.limits;
    const limits = {
      maxBufferSize: l.maxBufferSize,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    };
    const check = await selfCheck(gpu);
    const report = { adapter: gpu.adapterInfo, features: [...gpu.features].sort(), limits, selfCheck: check };
    if (json) {
      console.log(JSON.stringify(report, null, 2));
    } else {
      const a = gpu.adapterInfo;
      console.log(`adapter       ${a.vendor || '?'} / ${a.architecture || '?'}${a.device ? ` / ${a.device}` : ''}`);
      console.log(`description   ${a.description || '-'}`);
      console.log(`features      ${report.features.join(', ') || '-'}`);
      console.log('limits');
      for (const [k, v] of Object.entries(limits)) console.log(`  ${k.padEnd(36)} ${k.includes('Size') && v >= 1 << 16 ? `${v} (${fmtBytes(v)})` : v}`);
      console.log(
        `self-check    ${check.ok ? 'ok' : 'FAILED'}: ${check.what}; max relative error ${check.maxRelErr.toExponential(2)}; ` +
          `${check.ms.toFixed(1)} ms`,
      );
    }
    return check.ok ? 0 : 1;
  } finally {
    gpu.destroy();
  }
}
