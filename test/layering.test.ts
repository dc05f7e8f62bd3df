// Imports point one way: gpu → kernels → autograd → layers/io → nets → train/eval → api → cli. A backwards arrow fails.
// io (model files, images) may build tensors, so it sits beside layers.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const RANK: Record<string, number> = { gpu: 0, kernels: 1, autograd: 2, layers: 3, io: 3, nets: 4, train: 5, eval: 5, api: 6, cli: 7, web: 7 };

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function area(path: string): string {
  const rel = relative('src', path).split('/');
  return rel.length > 1 ? rel[0] : 'root';
}

describe('layering', () => {
  it('no module imports from a higher layer, and kernels never touch autograd', () => {
    const bad: string[] = [];
    for (const f of files('src')) {
      const from = area(f);
      const src = readFileSync(f, 'utf8');
      for (const m of src.matchAll(/(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/g)) {
        const target = area(join(f, '..', m[1]));
        if (from === 'root' || target === 'root') continue;
        expect(RANK[from], `unknown source area ${from} (${f})`).toBeDefined();
        expect(RANK[target], `unknown target area ${target} (${f} → ${m[1]})`).toBeDefined();
        if (RANK[target] > RANK[from])
          bad.push(`${f} imports ${m[1]} (${from} → ${target})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('only src/gpu creates GPU objects (and the canvas presenter its render pipeline)', () => {
    const gpuObjects = /\.(createBuffer|createComputePipeline|createShaderModule|createCommandEncoder|requestDevice)\(/;
    // src/web/present.ts draws an output buffer to a canvas: a shader module and an encoder for a render pass
    // on the engine's device, but no buffers, compute pipelines or devices of its own.
    const presenterObjects = /\.(createBuffer|createComputePipeline|requestDevice)\(/;
    const presenter = join('src', 'web', 'present.ts');
    const offenders = files('src').filter(
      (f) => area(f) !== 'gpu' && (f === presenter ? presenterObjects : gpuObjects).test(readFileSync(f, 'utf8')),
    );
    expect(offenders).toEqual([]);
  });

  it('only src/gpu writes to the queue: every upload goes through Gpu.upload, so a capture records it', () => {
    const presenter = join('src', 'web', 'present.ts'); // its own render parameters, never part of a capture
    const writers = files('src').filter((f) => area(f) !== 'gpu' && f !== presenter && /\.queue\.(writeBuffer|submit)\(/.test(readFileSync(f, 'utf8')));
    expect(writers).toEqual([]);
  });
});
