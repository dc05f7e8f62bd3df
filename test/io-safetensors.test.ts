// safetensors reader/writer: dtype conversion from hand-made bytes, round trips, validation messages, checkTensors,
// the real weight files in ../shared (when present) and the Node file helpers.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readFileBytes, readFileBytesSync, readWeightsFile, writeFileAtomic, writeFileAtomicSync } from '../src/io/files.js';
import { WeightFileError, checkTensors, readSafetensors, writeSafetensors, type LoadedTensor } from '../src/io/safetensors.js';
import { randn, rng } from './helpers/rand.js';
import { SHARED_TAG } from './helpers/shared.js';

const enc = new TextEncoder();

/** A safetensors file from a header object (serialised as given, padded to `headerLen` if set) and raw data. */
function makeFile(header: unknown, data: Uint8Array | number[], headerLen?: number): Uint8Array {
  let h = enc.encode(typeof header === 'string' ? header : JSON.stringify(header));
  if (headerLen !== undefined) {
    expect(h.length).toBeLessThanOrEqual(headerLen);
    const p = new Uint8Array(headerLen).fill(0x20);
    p.set(h);
    h = p;
  }
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function bytesLE(kind: 'u16' | 'f64' | 'i64' | 'i32' | 'i16', values: number[]): Uint8Array {
  const size = { u16: 2, f64: 8, i64: 8, i32: 4, i16: 2 }[kind];
  const b = new Uint8Array(values.length * size);
  const dv = new DataView(b.buffer);
  values.forEach((v, i) => {
    if (kind === 'u16') dv.setUint16(2 * i, v, true);
    else if (kind === 'f64') dv.setFloat64(8 * i, v, true);
    else if (kind === 'i64') dv.setBigInt64(8 * i, BigInt(v), true);
    else if (kind === 'i32') dv.setInt32(4 * i, v, true);
    else dv.setInt16(2 * i, v, true);
  });
  return b;
}

/** IEEE half from its bits, written from the definition (independent of the reader's table). */
function halfValue(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** bfloat16 from its bits: sign, 8-bit exponent (bias 127), 7-bit mantissa. */
function bf16Value(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 7) & 0xff;
  const m = h & 0x7f;
  if (e === 0) return s * m * 2 ** -133;
  if (e === 255) return m ? NaN : s * Infinity;
  return s * (1 + m / 128) * 2 ** (e - 127);
}

const same = (a: ArrayLike<number>, b: ArrayLike<number>) => expect(Array.from(a)).toEqual(Array.from(b)); // Object.is per element
/** Bit-identical float32 arrays (fast for large tensors). */
function sameBits(a: Float32Array, b: Float32Array, what: string) {
  expect(a.length, what).toBe(b.length);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  let bad = -1;
  for (let i = 0; i < x.length && bad < 0; i++) if (x[i] !== y[i]) bad = i;
  expect(bad, `${what}: first differing element`).toBe(-1);
}

function err(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(WeightFileError);
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

describe('dtype conversion', () => {
  it('F16: zeros, subnormals, normals, max, inf, nan', () => {
    const bits = [0x0000, 0x8000, 0x0001, 0x8001, 0x0200, 0x03ff, 0x0400, 0x3555, 0x3c00, 0xc000, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0xfe01];
    const f = makeFile({ h: { dtype: 'F16', shape: [4, 4], data_offsets: [0, 32] } }, bytesLE('u16', bits));
    const t = readSafetensors(f).tensors.get('h')!;
    expect(t.dtype).toBe('F16');
    expect(t.shape).toEqual([4, 4]);
    same(t.data, bits.map(halfValue));
    // spot values written out, in case halfValue and the reader share a mistake
    expect(t.data[2]).toBe(5.960464477539063e-8);
    expect(t.data[5]).toBe(6.097555160522461e-5);
    expect(t.data[6]).toBe(6.103515625e-5);
    expect(t.data[10]).toBe(65504);
    expect(Object.is(t.data[1], -0)).toBe(true);
  });

  it('BF16: zeros, subnormals, normals, inf, nan', () => {
    const bits = [0x0000, 0x8000, 0x0001, 0x007f, 0x0080, 0x3f80, 0xc049, 0x7f7f, 0x7f80, 0xff80, 0x7fc0, 0x3a83];
    const f = makeFile({ b: { dtype: 'BF16', shape: [12], data_offsets: [0, 24] } }, bytesLE('u16', bits));
    const t = readSafetensors(f).tensors.get('b')!;
    same(t.data, bits.map(bf16Value));
    expect(t.data[5]).toBe(1);
    expect(t.data[6]).toBe(-3.140625);
    expect(t.data[2]).toBe(2 ** -133);
  });

  it('F64, I64, I32, I16, I8, U8, BOOL; misaligned offsets', () => {
    const f64 = bytesLE('f64', [1 / 3, -1e300, 2.5]);
    const i64 = bytesLE('i64', [-5, 2 ** 40, 300]);
    const i32 = bytesLE('i32', [-7, 2 ** 31 - 1]);
    const i16 = bytesLE('i16', [-32768, 12]);
    const i8 = [0xff, 0x7f, 0x80];
    const u8 = [0, 200, 255];
    const bool = [0, 1, 1];
    const parts = [f64, i64, i32, i16, Uint8Array.from(i8), Uint8Array.from(u8), Uint8Array.from(bool)];
    const names = ['f64', 'i64', 'i32', 'i16', 'i8', 'u8', 'bool'];
    const dtypes = ['F64', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'];
    const header: Record<string, unknown> = {};
    let at = 0;
    parts.forEach((p, i) => {
      const n = p.length / [8, 8, 4, 2, 1, 1, 1][i];
      header[names[i]] = { dtype: dtypes[i], shape: [n], data_offsets: [at, at + p.length] };
      at += p.length;
    });
    const data = new Uint8Array(at);
    at = 0;
    for (const p of parts) (data.set(p, at), (at += p.length));
    // Put the file at an odd byte offset of a larger buffer: the reader must not assume alignment.
    const file = makeFile(header, data);
    const host = new Uint8Array(file.length + 3);
    host.set(file, 3);
    const t = readSafetensors(host.subarray(3)).tensors;
    same(t.get('f64')!.data, [Math.fround(1 / 3), -Infinity, 2.5]);
    same(t.get('i64')!.data, [-5, 2 ** 40, 300]);
    same(t.get('i32')!.data, [-7, Math.fround(2 ** 31 - 1)]);
    same(t.get('i16')!.data, [-32768, 12]);
    same(t.get('i8')!.data, [-1, 127, -128]);
    same(t.get('u8')!.data, [0, 200, 255]);
    same(t.get('bool')!.data, [0, 1, 1]);
  });
});

describe('writeSafetensors / readSafetensors round trip', () => {
  it('writes the Rust layout: compact sorted header, __metadata__ first, space padding to 8', () => {
    const out = writeSafetensors({ b: { data: Float32Array.from([1, 2]), shape: [2] }, a: { data: Float32Array.from([3]), shape: [] } }, { k: 'v' });
    const n = Number(new DataView(out.buffer).getBigUint64(0, true));
    const header = new TextDecoder().decode(out.subarray(8, 8 + n));
    const json = '{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}';
    expect(header).toBe(json + ' '.repeat(n - json.length));
    expect((8 + n) % 8).toBe(0);
    expect(n - json.length).toBeLessThan(8);
    same(new Float32Array(out.slice(8 + n).buffer), [3, 1, 2]);
  });

  it('values, shapes, metadata and names survive exactly', () => {
    const r = rng(3);
    const tensors = new Map<string, { data: Float32Array; shape: number[] }>([
      ['conv1.conv2d.weight', { data: Float32Array.from(randn(4 * 3 * 9 * 9, r)), shape: [4, 3, 9, 9] }],
      ['10', { data: Float32Array.from([NaN, Infinity, -0, 1e-45]), shape: [2, 2] }],
      ['9', { data: Float32Array.from([7]), shape: [] }],
      ['empty', { data: new Float32Array(0), shape: [0, 3] }],
      ['名前.ü', { data: Float32Array.from(randn(13, r)), shape: [13] }],
    ]);
    const meta = { input: 'rgb01_imagenet_norm', 'quote"and\\': 'línea\nnueva' };
    const back = readSafetensors(writeSafetensors(tensors, meta));
    expect(back.metadata).toEqual(meta);
    expect([...back.tensors.keys()]).toEqual(['10', '9', 'conv1.conv2d.weight', 'empty', '名前.ü']); // by name (bytes)
    for (const [k, t] of tensors) {
      const b = back.tensors.get(k)!;
      expect(b.shape, k).toEqual(t.shape);
      expect(b.dtype).toBe('F32');
      same(b.data, t.data);
    }
  });

  it('F16 storage: half the bytes, every value rounded to the nearest half (ties to even), read back as float32', () => {
    const data = Float32Array.from([0, -0, 1, 1 / 3, 65504, 70000, 2 ** -24, 1 + 2 ** -11, 1 + 3 * 2 ** -11, -2.5e-8, Number.NaN]);
    const dataBytes = (file: Uint8Array) => file.length - 8 - Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
    const f32 = writeSafetensors({ t: { data, shape: [data.length] } });
    const f16 = writeSafetensors({ t: { data, shape: [data.length] } }, { note: 'x' }, { dtype: 'F16' });
    expect(dataBytes(f16)).toBe(dataBytes(f32) / 2);
    const back = readSafetensors(f16);
    expect(back.tensors.get('t')!.dtype).toBe('F16');
    expect(back.metadata).toEqual({ note: 'x' });
    // 1/3 → 0x3555 (0.333251953125); 70000 overflows to Inf; 1 + 2^-11 is a tie (→ 1, the even one); 1 + 3·2^-11
    // rounds up to 1 + 2^-9; −2.5e-8 is below half the smallest subnormal (→ −0); NaN stays NaN.
    expect(Array.from(back.tensors.get('t')!.data)).toEqual([0, -0, 1, 0.333251953125, 65504, Infinity, 2 ** -24, 1, 1 + 2 ** -9, -0, Number.NaN]);
    expect(() => writeSafetensors({ t: { data, shape: [data.length] } }, {}, { dtype: 'BF16' as never })).toThrow('safetensors: cannot write dtype BF16 (F32, F16)');
  });

  it('refuses bad input to the writer', () => {
    expect(() => writeSafetensors({ w: { data: new Float32Array(5), shape: [2, 3] } })).toThrow(
      new WeightFileError('safetensors: tensor w: shape [2,3] has 6 elements, data has 5'),
    );
    expect(() => writeSafetensors({ __metadata__: { data: new Float32Array(1), shape: [1] } })).toThrow('invalid tensor name "__metadata__"');
  });
});

describe('readSafetensors validation', () => {
  const w = { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] };
  const data = new Uint8Array(24);

  it('header problems', () => {
    expect(err(() => readSafetensors(new Uint8Array(5), 'a.safetensors'))).toBe(
      'a.safetensors: 5 bytes is too short for a safetensors file (it starts with an 8-byte header length)',
    );
    const big = makeFile({ w }, data);
    new DataView(big.buffer).setBigUint64(0, 1000n, true);
    expect(err(() => readSafetensors(big, 'a.safetensors'))).toBe(
      `a.safetensors: header length 1000 goes beyond the end of the file (${big.length} bytes): not a safetensors file, or truncated`,
    );
    expect(err(() => readSafetensors(makeFile('{"w": {"dtype": "F32",', data), 'a.safetensors'))).toMatch(
      /^a\.safetensors: header \(bytes 8\.\.30\) is not valid JSON: /,
    );
    expect(err(() => readSafetensors(makeFile('[1,2]', []), 'a.safetensors'))).toBe('a.safetensors: header must be a JSON object, found an array');
    expect(err(() => readSafetensors(makeFile({ __metadata__: { a: 1 } }, []), 'a.safetensors'))).toBe(
      'a.safetensors: __metadata__ must map strings to strings; "a" is a number',
    );
  });

  it('dtype and shape problems name the tensor', () => {
    expect(err(() => readSafetensors(makeFile({ w: { ...w, dtype: 'Q7' } }, data)))).toBe('safetensors file: tensor w: unknown dtype "Q7"');
    expect(err(() => readSafetensors(makeFile({ w: { dtype: 'F8_E4M3', shape: [2, 3], data_offsets: [0, 6] } }, new Uint8Array(6))))).toBe(
      'safetensors file: tensor w: dtype F8_E4M3 is not supported (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)',
    );
    expect(err(() => readSafetensors(makeFile({ w: { ...w, shape: [2, -3] } }, data)))).toBe(
      'safetensors file: tensor w: "shape" must be an array of non-negative integers, found [2,-3]',
    );
    expect(err(() => readSafetensors(makeFile({ w: { ...w, data_offsets: [24, 0] } }, data)))).toBe(
      'safetensors file: tensor w: "data_offsets" must be [begin, end] with 0 <= begin <= end, found [24,0]',
    );
  });

  it('offsets: size mismatch, beyond the data, overlap, holes, trailing bytes', () => {
    const b = { dtype: 'F32', shape: [2], data_offsets: [24, 32] };
    expect(err(() => readSafetensors(makeFile({ w: { ...w, shape: [2, 4] } }, data), 'm.safetensors'))).toBe(
      'm.safetensors: tensor w: shape [2,4] F32 needs 32 bytes, data_offsets give 24',
    );
    expect(err(() => readSafetensors(makeFile({ w, b }, data), 'm.safetensors'))).toBe(
      'm.safetensors: tensor b: data_offsets [24,32] beyond the data section (24 bytes): file truncated?',
    );
    expect(err(() => readSafetensors(makeFile({ w, b: { ...b, data_offsets: [20, 28] } }, new Uint8Array(28)), 'm.safetensors'))).toBe(
      'm.safetensors: data_offsets of tensors w [0,24] and b [20,28] overlap',
    );
    expect(err(() => readSafetensors(makeFile({ w, b: { ...b, data_offsets: [28, 36] } }, new Uint8Array(36)), 'm.safetensors'))).toBe(
      'm.safetensors: 4 bytes before tensor b [28,36] belong to no tensor: data_offsets must be contiguous (previous: w [0,24])',
    );
    expect(err(() => readSafetensors(makeFile({ w }, new Uint8Array(25)), 'm.safetensors'))).toBe(
      'm.safetensors: 1 bytes after the last tensor (data section 25 bytes, tensors end at 24) belong to no tensor',
    );
    // the header may be padded with spaces; tensors may be listed in any order
    const ok = readSafetensors(makeFile({ b: { ...b, data_offsets: [24, 32] }, w }, new Uint8Array(32), 200));
    expect([...ok.tensors.keys()]).toEqual(['w', 'b']);
  });
});

describe('checkTensors', () => {
  const t = (shape: number[]): LoadedTensor => ({ data: new Float32Array(shape.reduce((a, b) => a * b, 1)), shape, dtype: 'F32' });
  const tensors = new Map([['features.0.weight', t([64, 3, 5, 5])], ['features.0.bias', t([64])], ['c', t([1])]]);
  const expected = new Map<string, number[]>([['a', [1]], ['b', [2]], ['features.0.weight', [64, 3, 3, 3]], ['features.0.bias', [64]]]);

  it('reports missing, extra and mis-shaped tensors in one message', () => {
    expect(err(() => checkTensors('model.safetensors', tensors, expected))).toBe(
      'model.safetensors: missing tensors: a, b; unexpected: c; tensor features.0.weight: expected shape [64,3,3,3], found [64,3,5,5]',
    );
    expect(err(() => checkTensors('model.safetensors', tensors, expected, { allowExtra: true }))).toBe(
      'model.safetensors: missing tensors: a, b; tensor features.0.weight: expected shape [64,3,3,3], found [64,3,5,5]',
    );
    expect(() => checkTensors('m', tensors, { 'features.0.bias': [64] }, { allowExtra: true })).not.toThrow();
  });
});

const SHARED = fileURLToPath(new URL('../../shared/', import.meta.url));
const HAVE_SHARED = existsSync(join(SHARED, 'weights/squeezenet1_1.safetensors'));

describe.skipIf(!HAVE_SHARED)(`the real weight files in ../shared ${SHARED_TAG}`, () => {
  const squeeze = () => readFileBytesSync(join(SHARED, 'weights/squeezenet1_1.safetensors'));
  const vgg = () => readFileBytesSync(join(SHARED, 'weights/vgg16_partial_relu2_2.safetensors'));

  /** The parsed header and data start of a file, read with JSON.parse here (independent of the reader). */
  function rawHeader(bytes: Uint8Array) {
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    return { n, header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, any> };
  }
  /** Re-serialises a mutated header into the same header length (so the data section stays put). */
  function withHeader(bytes: Uint8Array, mutate: (h: Record<string, any>) => void): Uint8Array {
    const { n, header } = rawHeader(bytes);
    mutate(header);
    const h = enc.encode(JSON.stringify(header));
    expect(h.length).toBeLessThanOrEqual(n);
    const out = bytes.slice();
    out.fill(0x20, 8, 8 + n);
    out.set(h, 8);
    return out;
  }

  it('squeezenet1_1: torchvision names and shapes, 1,235,496 parameters, metadata', () => {
    const f = readSafetensors(squeeze(), 'squeezenet1_1.safetensors');
    const expected = new Map<string, number[]>([['features.0.weight', [64, 3, 3, 3]], ['features.0.bias', [64]]]);
    const fire: [number, number, number, number][] = [[3, 64, 16, 64], [4, 128, 16, 64], [6, 128, 32, 128], [7, 256, 32, 128], [9, 256, 48, 192], [10, 384, 48, 192], [11, 384, 64, 256], [12, 512, 64, 256]];
    for (const [i, cin, s, e] of fire) {
      expected.set(`features.${i}.squeeze.weight`, [s, cin, 1, 1]).set(`features.${i}.squeeze.bias`, [s]);
      expected.set(`features.${i}.expand1x1.weight`, [e, s, 1, 1]).set(`features.${i}.expand1x1.bias`, [e]);
      expected.set(`features.${i}.expand3x3.weight`, [e, s, 3, 3]).set(`features.${i}.expand3x3.bias`, [e]);
    }
    expected.set('classifier.1.weight', [1000, 512, 1, 1]).set('classifier.1.bias', [1000]);
    checkTensors('squeezenet1_1.safetensors', f.tensors, expected);
    expect(f.tensors.size).toBe(52);
    expect([...f.tensors.values()].reduce((a, t) => a + t.data.length, 0)).toBe(1235496);
    expect(f.metadata.input).toBe('rgb01_imagenet_norm');
    // the values are the file's bytes, read independently
    const bytes = squeeze();
    const { n, header } = rawHeader(bytes);
    const [b0, b1] = header['classifier.1.bias'].data_offsets;
    same(f.tensors.get('classifier.1.bias')!.data, new Float32Array(bytes.slice(8 + n + b0, 8 + n + b1).buffer));
  });

  it('vgg16_partial_relu2_2: conv1_1 to conv2_2 with the known first filter', () => {
    const f = readSafetensors(vgg(), 'vgg16_partial_relu2_2.safetensors');
    checkTensors('vgg16_partial_relu2_2.safetensors', f.tensors, {
      'features.0.weight': [64, 3, 3, 3], 'features.0.bias': [64], 'features.2.weight': [64, 64, 3, 3], 'features.2.bias': [64],
      'features.5.weight': [128, 64, 3, 3], 'features.5.bias': [128], 'features.7.weight': [128, 128, 3, 3], 'features.7.bias': [128],
    });
    // README: features.0.weight[0,0], printed to 8 significant digits
    const w00 = Array.from(f.tensors.get('features.0.weight')!.data.subarray(0, 9));
    [0.42947057, 0.373467, -0.06136011, 0.27476987, 0.03868078, -0.36722335, -0.05746817, -0.26224968, -0.35009676].forEach((v, i) =>
      expect(Math.abs(w00[i] - v)).toBeLessThan(1e-8),
    );
    const bias = Array.from(f.tensors.get('features.0.bias')!.data.subarray(0, 4));
    [0.73429835, 0.09340367, 0.06775674, 0.8862966].forEach((v, i) => expect(Math.abs(bias[i] - v)).toBeLessThan(2.5e-4));
    expect(f.metadata.input).toBe('bgr255_mean_sub');
  });

  it('reference activations (headers with spaces, __metadata__ last)', () => {
    const s = readSafetensors(readFileBytesSync(join(SHARED, 'reference/squeezenet1_1_chicago.safetensors')));
    expect(s.tensors.get('input')!.shape).toEqual([1, 3, 224, 224]);
    expect(s.tensors.get('features.1')!.shape).toEqual([1, 64, 111, 111]);
    expect(s.metadata.image).toBe('chicago.jpg');
    const v = readSafetensors(readFileBytesSync(join(SHARED, 'reference/vgg16_partial_golden_gate.safetensors')));
    expect([...v.tensors.keys()]).toEqual(['input', 'relu1_2', 'relu2_2']);
    expect(v.tensors.get('relu2_2')!.shape).toEqual([1, 128, 48, 64]);
  });

  it('round trip of a real file: write -> read equals', () => {
    const f = readSafetensors(vgg());
    const back = readSafetensors(writeSafetensors(f.tensors, f.metadata));
    expect(back.metadata).toEqual(f.metadata);
    expect(back.tensors.size).toBe(f.tensors.size);
    for (const [k, t] of f.tensors) {
      expect(back.tensors.get(k)!.shape).toEqual(t.shape);
      sameBits(back.tensors.get(k)!.data, t.data, k);
    }
  });

  it('corrupted copies: truncated by one byte, broken JSON, wrong offsets, overlap', () => {
    const bytes = vgg();
    const { n, header } = rawHeader(bytes);
    const dataLen = bytes.length - 8 - n;
    const [lastName, last] = Object.entries(header)
      .filter(([k]) => k !== '__metadata__')
      .sort((a, b) => b[1].data_offsets[1] - a[1].data_offsets[1])[0];
    expect(err(() => readSafetensors(bytes.subarray(0, bytes.length - 1), 'vgg.safetensors'))).toBe(
      `vgg.safetensors: tensor ${lastName}: data_offsets [${last.data_offsets.join(',')}] beyond the data section (${dataLen - 1} bytes): file truncated?`,
    );
    const flipped = bytes.slice();
    flipped[8] = 0x5b; // '{' -> '['
    expect(err(() => readSafetensors(flipped, 'vgg.safetensors'))).toMatch(/^vgg\.safetensors: header \(bytes 8\.\.\d+\) is not valid JSON: /);
    const wrong = withHeader(bytes, (h) => (h['features.0.weight'].data_offsets = [0, 6900]));
    expect(err(() => readSafetensors(wrong, 'vgg.safetensors'))).toBe(
      'vgg.safetensors: tensor features.0.weight: shape [64,3,3,3] F32 needs 6912 bytes, data_offsets give 6900',
    );
    const overlap = withHeader(bytes, (h) => (h['features.0.bias'].data_offsets = [6000, 6256]));
    expect(err(() => readSafetensors(overlap, 'vgg.safetensors'))).toBe(
      'vgg.safetensors: data_offsets of tensors features.0.weight [0,6912] and features.0.bias [6000,6256] overlap',
    );
  });
});

describe('Node file helpers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'io-files-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writeFileAtomic replaces the file whole and leaves no temporary file', async () => {
    const path = join(dir, 'w.safetensors');
    writeFileSync(path, 'old');
    const bytes = writeSafetensors({ x: { data: Float32Array.from([1, 2, 3]), shape: [3] } }, { a: 'b' });
    await writeFileAtomic(path, bytes);
    expect(await readFileBytes(path)).toEqual(bytes);
    expect(readdirSync(dir)).toEqual(['w.safetensors']);
    const f = await readWeightsFile(path);
    same(f.tensors.get('x')!.data, [1, 2, 3]);
    writeFileAtomicSync(path, 'text');
    expect(readFileSync(path, 'utf8')).toBe('text');
    expect(readdirSync(dir)).toEqual(['w.safetensors']);
    await expect(writeFileAtomic(join(dir, 'no/such/dir/f'), bytes)).rejects.toThrow(/ENOENT/);
    expect(readdirSync(dir)).toEqual(['w.safetensors']);
  });
});
