// Half-precision storage (WebGPU's 'shader-f16'): tensors whose elements are stored as IEEE binary16 while every
// kernel still computes and accumulates in f32. No kernel is written twice: the f16 variant of a kernel is derived
// from its WGSL for the bindings that hold f16 tensors (`array<f32>` → `array<f16>`, `array<vec4f>` →
// `array<vec4<f16>>`; each read `x[i]` becomes `f32(x[i])`, each write `y[i] = e` becomes `y[i] = f16(e)`), and
// Gpu.dispatch picks it from the dtypes of the tensors bound, so mixed bindings (an f16 activation with f32 biases
// or norm coefficients) need nothing from the launchers but the dtype of what they allocate.
// Host side: float32 ↔ binary16 conversion (round to nearest, ties to even; subnormals; overflow to ±Inf; NaN kept).
import { kernel, type Dtype, type Kernel, type RawTensor } from './kernel.js';

/** 'auto': f16 where the adapter has 'shader-f16' and it pays (see pickPrecision); 'f32' or 'f16' forced. */
export type Precision = 'auto' | Dtype;
export const PRECISIONS: readonly Precision[] = ['auto', 'f32', 'f16'];

// ---- host conversion ----------------------------------------------------------------------------------------

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The binary16 bits nearest to v (rounded to float32 first), ties to even. */
export function f16Bits(v: number): number {
  f32[0] = v;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // Inf, NaN (quiet, payload kept)
  if (exp >= 113) {
    // Normal in f16 unless it overflows; a carry out of the mantissa bumps the exponent (up to Inf), as it should.
    if (exp > 142) return sign | 0x7c00;
    const h = ((exp - 112) << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    return sign | (rem > 0x1000 || (rem === 0x1000 && h & 1) ? h + 1 : h);
  }
  // Subnormal (or zero): the 24-bit significand shifted to units of 2^-24.
  if (exp < 102) return sign;
  const m = mant | 0x800000;
  const shift = 126 - exp;
  const h = m >>> shift;
  const rem = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return sign | (rem > half || (rem === half && h & 1) ? h + 1 : h);
}

let table: Float32Array | null = null;

/** Every binary16 value as float32, indexed by its bits (reads are one lookup per element). */
function f16Table(): Float32Array {
  if (table) return table;
  table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    table[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return table;
}

export function toF16(data: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = f16Bits(data[i]);
  return out;
}

export function fromF16(bits: Uint16Array): Float32Array {
  const t = f16Table();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]];
  return out;
}

/** The bytes of an upload: float32 (or raw u32 words) as they are; f16 as given bits (a Uint16Array) or rounded.
 *  (A Uint16Array for an f32 tensor is numbers, as any other array.) */
export function uploadBytes(data: ArrayLike<number> | Uint32Array | Uint16Array, dtype: Dtype): Uint8Array {
  let a: Float32Array | Uint32Array | Uint16Array;
  if (dtype === 'f16') {
    if (data instanceof Uint32Array) throw new Error('Gpu.upload: u32 words cannot be stored as f16');
    a = data instanceof Uint16Array ? data : toF16(data);
  } else a = data instanceof Float32Array || data instanceof Uint32Array ? data : Float32Array.from(data);
  // writeBuffer wants whole words: an odd number of f16 elements is padded with one more.
  if (a.byteLength % 4) {
    const padded = new Uint16Array(a.length + 1);
    padded.set(a as Uint16Array);
    a = padded;
  }
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

// ---- kernel variants ----------------------------------------------------------------------------------------

/** Element types a binding may have for an f16 variant: the f16 type and the f32 type reads convert back to. */
const HALF: Record<string, { half: string; full: string }> = {
  f32: { half: 'f16', full: 'f32' },
  vec2f: { half: 'vec2<f16>', full: 'vec2f' },
  vec3f: { half: 'vec3<f16>', full: 'vec3f' },
  vec4f: { half: 'vec4<f16>', full: 'vec4f' },
  'vec2<f32>': { half: 'vec2<f16>', full: 'vec2<f32>' },
  'vec4<f32>': { half: 'vec4<f16>', full: 'vec4<f32>' },
};

const variants = new WeakMap<Kernel, Map<string, Kernel>>();

/** The names of the storage bindings that get f16 tensors, sorted; empty if none. */
export function halfBindings(bindings: Record<string, unknown>): string[] {
  const names: string[] = [];
  for (const name in bindings) {
    const t = bindings[name] as Partial<RawTensor>;
    if (t && t.dtype === 'f16') names.push(name);
  }
  return names.sort();
}

/** Kernel k with the named storage bindings in f16 (derived once per set of names, then cached). */
export function f16Variant(k: Kernel, names: readonly string[]): Kernel {
  const key = names.join(',');
  let byNames = variants.get(k);
  if (!byNames) variants.set(k, (byNames = new Map()));
  let v = byNames.get(key);
  if (!v) byNames.set(key, (v = deriveF16(k, names)));
  return v;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function deriveF16(k: Kernel, names: readonly string[]): Kernel {
  const fail = (why: string) => new Error(`kernel ${k.name}: no f16 variant for binding(s) ${names.join(', ')}: ${why}`);
  let code = k.code;
  const types = new Map<string, { half: string; full: string }>();
  for (const n of names) {
    if (k.bindings.get(n)?.kind !== 'storage') throw fail(`${n} is not a storage binding`);
    const decl = new RegExp(`(var<storage,\\s*(?:read|read_write)>\\s*${esc(n)}\\s*:\\s*array<)\\s*(f32|vec[234]f|vec[234]<f32>)\\s*>`);
    const m = decl.exec(code);
    if (!m || !HALF[m[2]]) throw fail(`${n} is not an array of f32 or f32 vectors`);
    const t = HALF[m[2]];
    types.set(n, t);
    code = code.replace(decl, (_, head: string) => `${head}${t.half}>`);
    // A local or parameter of the same name would be rewritten too: refuse rather than miscompile.
    if (new RegExp(`\\b(?:let|var|const)\\s+${esc(n)}\\b|[(,]\\s*${esc(n)}\\s*:(?!:)`).test(code)) throw fail(`${n} is also declared inside the shader`);
  }
  return kernel(`${k.name}[f16 ${names.join(',')}]`, `enable f16;\n${rewrite(code, types, fail)}`, k.entry);
}

/** Index of the bracket closing the one at `open`. */
function closing(src: string, open: number): number {
  let depth = 0;
  for (let i = open; i < src.length; i++) {
    const c = src[i];
    if (c === '[' || c === '(') depth++;
    else if (c === ']' || c === ')') {
      depth--;
      if (depth === 0) return i;
    }
  }
  throw new Error(`unbalanced brackets from ${src.slice(open, open + 40)}`);
}

/** Index of the ';' ending the statement that continues at `from` (outside any bracket). */
function statementEnd(src: string, from: number): number {
  let depth = 0;
  for (let i = from; i < src.length; i++) {
    const c = src[i];
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    else if (c === ';' && depth === 0) return i;
  }
  throw new Error(`no ';' after ${src.slice(from, from + 40)}`);
}

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;

/** Reads of the f16 bindings converted to f32, writes converted to f16 (compound assignments spelled out). */
function rewrite(src: string, types: ReadonlyMap<string, { half: string; full: string }>, fail: (why: string) => Error): string {
  let out = '';
  let i = 0;
  while (i < src.length) {
    if (src.startsWith('//', i) || src.startsWith('/*', i)) {
      const end = src.startsWith('//', i) ? src.indexOf('\n', i) : src.indexOf('*/', i) + 2;
      const stop = end <= i ? src.length : end;
      out += src.slice(i, stop);
      i = stop;
      continue;
    }
    IDENT.lastIndex = i;
    const m = IDENT.exec(src);
    if (!m) {
      out += src[i++];
      continue;
    }
    const name = m[0];
    const t = types.get(name);
    i += name.length;
    if (!t || src[m.index - 1] === '.') {
      out += name;
      continue;
    }
    let j = i;
    while (/\s/.test(src[j] ?? '')) j++;
    if (src[j] !== '[') {
      if (/var<storage[^>]*>\s*$/.test(out)) {
        out += name; // its declaration
        continue;
      }
      throw fail(`${name} is used other than by index (${src.slice(m.index, m.index + 30).split('\n')[0]})`);
    }
    const close = closing(src, j);
    const access = `${name}[${rewrite(src.slice(j + 1, close), types, fail)}]`;
    const rest = src.slice(close + 1);
    const assign = /^\s*([-+*/]?)=(?!=)/.exec(rest);
    if (!assign) {
      out += `${t.full}(${access})`;
      i = close + 1;
      continue;
    }
    const from = close + 1 + assign[0].length;
    const end = statementEnd(src, from);
    const rhs = rewrite(src.slice(from, end), types, fail).trim();
    out += `${access} = ${t.half}(${assign[1] ? `${t.full}(${access}) ${assign[1]} (${rhs})` : rhs})`;
    i = end;
  }
  return out;
}

/** What 'auto' resolves to, and the check of a forced choice: f16 needs the device's 'shader-f16'. 'auto' is f16 on a
 *  GPU (halved bytes for bandwidth-bound kernels and for memory) and f32 on a CPU adapter: lavapipe reports the
 *  feature but computes f16 through f32, and measured no gain beyond its noise (bench/precision.ts, README), so
 *  there the exact f32 result costs nothing. */
export function pickPrecision(gpu: { features: ReadonlySet<string>; software: boolean }, precision: Precision = 'auto', what = 'precision'): Dtype {
  if (!PRECISIONS.includes(precision)) throw new Error(`${what}: unknown precision "${String(precision)}" (known: ${PRECISIONS.join(', ')})`);
  const has = gpu.features.has('shader-f16');
  if (precision === 'f16' && !has) throw new Error(`${what}: f16 needs the adapter's 'shader-f16' feature, which this adapter does not have`);
  if (precision !== 'auto') return precision;
  return has && !gpu.software ? 'f16' : 'f32';
}
