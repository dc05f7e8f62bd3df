// Imports point one way: gpu → kernels → autograd → layers/io → nets → train/eval → api → cli. A backwards arrow fails,
// also one through an entry (core.ts, index.ts, browser.ts): importing an entry imports everything it re-exports.
// io (model files, images) may build tensors, so it sits beside layers. No import cycles, type-only imports included.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
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

// Static imports and re-exports (type-only ones too, any line breaks in the braces), side-effect and dynamic imports.
const IMPORTS = [
  /^(?:import|export)\s+(?:type\s+)?(?:[\w$]+\s*,?\s*)?(?:\*\s*(?:as\s+[\w$]+\s*)?)?(?:\{[^}]*\}\s*)?from\s*['"]([^'"]+)['"]/gm,
  /^import\s*['"]([^'"]+)['"]/gm,
  /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
];

interface Import {
  spec: string;
  /** The .ts file it names. */
  path: string;
}

/** A file's relative imports, resolved to the .ts files they name. */
function importsOf(f: string): Import[] {
  const src = readFileSync(f, 'utf8');
  return IMPORTS.flatMap((re) => [...src.matchAll(re)].map((m) => m[1]))
    .filter((spec) => spec.startsWith('.'))
    .map((spec) => ({ spec, path: join(dirname(f), spec).replace(/\.js$/, '.ts') }));
}

const graph = new Map(files('src').map((f) => [f, importsOf(f)]));

/** The files an import of `path` brings in: itself, or for an entry, what it re-exports (through other entries too). */
function reached(path: string, seen = new Set<string>()): string[] {
  if (area(path) !== 'root') return [path];
  if (seen.has(path)) return [];
  seen.add(path);
  return (graph.get(path) ?? []).flatMap((i) => reached(i.path, seen));
}

/** Every cycle a depth-first walk meets, each listed from its first file back to it. */
function cycles(): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const { path } of graph.get(f) ?? []) {
      if (state.get(path) === 'open') found.push([...stack.slice(stack.indexOf(path)), path]);
      else if (!state.has(path)) visit(path);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of [...graph.keys()].sort()) if (!state.has(f)) visit(f);
  return found;
}

describe('layering', () => {
  it('every relative import names a file under src', () => {
    const missing = [...graph].flatMap(([f, imports]) => imports.filter((i) => !existsSync(i.path)).map((i) => `${f} imports ${i.spec}`));
    expect(missing).toEqual([]);
  });

  it('no module imports from a higher layer, not even through an entry, and kernels never touch autograd', () => {
    const bad: string[] = [];
    for (const [f, imports] of graph) {
      const from = area(f);
      if (from === 'root') continue;
      expect(RANK[from], `unknown source area ${from} (${f})`).toBeDefined();
      for (const { spec, path } of imports) {
        for (const t of reached(path)) {
          const target = area(t);
          expect(RANK[target], `unknown target area ${target} (${f} → ${t})`).toBeDefined();
          if (RANK[target] > RANK[from]) bad.push(`${f} imports ${spec}${t === path ? '' : ` → ${t}`} (${from} → ${target})`);
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it('no import cycles between files (type-only imports included)', () => {
    expect(cycles().map((c) => c.join(' → '))).toEqual([]);
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
