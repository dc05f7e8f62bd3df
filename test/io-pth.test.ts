// torch.save checkpoints: readPth on files written by real torch.save (embedded below) and by the test writer
// test/helpers/torch-save.ts, which must reproduce torch.save byte for byte; plus the unpickler and every error path.
import { describe, expect, it } from 'vitest';
import { zipSync } from 'fflate';
import { readPth } from '../src/io/pth.js';
import { PyDict, UnpicklingError, unpickle } from '../src/io/pickle.js';
import { WeightFileError, checkTensors, writeSafetensors } from '../src/io/safetensors.js';
import { OrderedDict, PyFloat, Storage, Tensor, f32, torchPickle, torchSave, torchZip, type PyValue } from './helpers/torch-save.js';
import { rng, randn } from './helpers/rand.js';

const b64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const u16 = (a: number[]) => a.map((x) => x & 0xffff);
const range = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));

// Written by torch 1.13.1 (Debian python3-torch, CPython 3.11) with torch.save(obj, io.BytesIO()), where obj is:
//   sd = OrderedDict()
//   sd['conv1.conv2d.weight'] = (torch.arange(54, dtype=torch.float32).reshape(2,3,3,3) - 20) / 8
//   sd['conv1.conv2d.bias'] = torch.tensor([0.5, -1.5])
//   base = torch.arange(10, dtype=torch.float32) * 0.25
//   sd['in1.weight'] = base[4:7]; sd['in1.bias'] = base[0:3]        # one storage, storage offset 4
//   sd['res1.conv1.conv2d.weight'] = torch.tensor([[1, -2.5], [0.125, 65504], [-0.0, 6.1e-5]], dtype=torch.float16)
//   sd['deconv1.conv2d.weight'] = (torch.arange(12, dtype=torch.float32).reshape(3, 4) - 5).t()   # strides (1, 4)
//   sd['up.weight'] = torch.tensor([1.5, -3.0, 1e-3], dtype=torch.bfloat16)
//   sd['d.weight'] = torch.tensor([1.0/3, -2.0], dtype=torch.float64)
//   sd['bn.num_batches_tracked'] = torch.tensor(300)
//   sd._metadata = OrderedDict([('', {'version': 1}), ('conv1', {'version': 1}), ('conv1.conv2d', {'version': 1}),
//                               ('in1', {'version': 1}), ('bn', {'version': 2})])
const GOLDEN1 = b64(
  'UEsDBAAACAgAAAAAAAAAAAAAAAAAAAAAAAAQABIAYXJjaGl2ZS9kYXRhLnBrbEZCDgBaWlpaWlpaWlpaWlpaWoACY2NvbGxlY3Rpb25zCk9yZG' +
  'VyZWREaWN0CnEAKVJxAShYEwAAAGNvbnYxLmNvbnYyZC53ZWlnaHRxAmN0b3JjaC5fdXRpbHMKX3JlYnVpbGRfdGVuc29yX3YyCnEDKChYBwAA' +
  'AHN0b3JhZ2VxBGN0b3JjaApGbG9hdFN0b3JhZ2UKcQVYAQAAADBxBlgDAAAAY3B1cQdLNnRxCFFLAChLAksDSwNLA3RxCShLG0sJSwNLAXRxCo' +
  'loAClScQt0cQxScQ1YEQAAAGNvbnYxLmNvbnYyZC5iaWFzcQ5oAygoaARoBVgBAAAAMXEPaAdLAnRxEFFLAEsChXERSwGFcRKJaAApUnETdHEU' +
  'UnEVWAoAAABpbjEud2VpZ2h0cRZoAygoaARoBVgBAAAAMnEXaAdLCnRxGFFLBEsDhXEZSwGFcRqJaAApUnEbdHEcUnEdWAgAAABpbjEuYmlhc3' +
  'EeaAMoKGgEaAVoF2gHSwp0cR9RSwBLA4VxIEsBhXEhiWgAKVJxInRxI1JxJFgYAAAAcmVzMS5jb252MS5jb252MmQud2VpZ2h0cSVoAygoaARj' +
  'dG9yY2gKSGFsZlN0b3JhZ2UKcSZYAQAAADNxJ2gHSwZ0cShRSwBLA0sChnEpSwJLAYZxKoloAClScSt0cSxScS1YFQAAAGRlY29udjEuY29udj' +
  'JkLndlaWdodHEuaAMoKGgEaAVYAQAAADRxL2gHSwx0cTBRSwBLBEsDhnExSwFLBIZxMoloAClScTN0cTRScTVYCQAAAHVwLndlaWdodHE2aAMo' +
  'KGgEY3RvcmNoCkJGbG9hdDE2U3RvcmFnZQpxN1gBAAAANXE4aAdLA3RxOVFLAEsDhXE6SwGFcTuJaAApUnE8dHE9UnE+WAgAAABkLndlaWdodH' +
  'E/aAMoKGgEY3RvcmNoCkRvdWJsZVN0b3JhZ2UKcUBYAQAAADZxQWgHSwJ0cUJRSwBLAoVxQ0sBhXFEiWgAKVJxRXRxRlJxR1gWAAAAYm4ubnVt' +
  'X2JhdGNoZXNfdHJhY2tlZHFIaAMoKGgEY3RvcmNoCkxvbmdTdG9yYWdlCnFJWAEAAAA3cUpoB0sBdHFLUUsAKSmJaAApUnFMdHFNUnFOdX1xT1' +
  'gJAAAAX21ldGFkYXRhcVBoAClScVEoWAAAAABxUn1xU1gHAAAAdmVyc2lvbnFUSwFzWAUAAABjb252MXFVfXFWaFRLAXNYDAAAAGNvbnYxLmNv' +
  'bnYyZHFXfXFYaFRLAXNYAwAAAGluMXFZfXFaaFRLAXNYAgAAAGJucVt9cVxoVEsCc3VzYi5QSwcIUg3vAtMDAADTAwAAUEsDBAAACAgAAAAAAA' +
  'AAAAAAAAAAAAAAAAAOADEAYXJjaGl2ZS9kYXRhLzBGQi0AWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaAAAg' +
  'wAAAGMAAABDAAAAIwAAAAMAAAPC/AADgvwAA0L8AAMC/AACwvwAAoL8AAJC/AACAvwAAYL8AAEC/AAAgvwAAAL8AAMC+AACAvgAAAL4AAAAAAA' +
  'AAPgAAgD4AAMA+AAAAPwAAID8AAEA/AABgPwAAgD8AAJA/AACgPwAAsD8AAMA/AADQPwAA4D8AAPA/AAAAQAAACEAAABBAAAAYQAAAIEAAAChA' +
  'AAAwQAAAOEAAAEBAAABIQAAAUEAAAFhAAABgQAAAaEAAAHBAAAB4QAAAgEAAAIRAUEsHCIqii5/YAAAA2AAAAFBLAwQAAAgIAAAAAAAAAAAAAA' +
  'AAAAAAAAAADgAsAGFyY2hpdmUvZGF0YS8xRkIoAFpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWloAAAA/AADAv1BLBwht' +
  'iXfWCAAAAAgAAABQSwMEAAAICAAAAAAAAAAAAAAAAAAAAAAAAA4APABhcmNoaXZlL2RhdGEvMkZCOABaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWl' +
  'paWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWgAAAAAAAIA+AAAAPwAAQD8AAIA/AACgPwAAwD8AAOA/AAAAQAAAEEBQSwcIlj0sJSgA' +
  'AAAoAAAAUEsDBAAACAgAAAAAAAAAAAAAAAAAAAAAAAAOABwAYXJjaGl2ZS9kYXRhLzNGQhgAWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaADwAwQ' +
  'Aw/3sAgP8DUEsHCLdgpN8MAAAADAAAAFBLAwQAAAgIAAAAAAAAAAAAAAAAAAAAAAAADgA4AGFyY2hpdmUvZGF0YS80RkI0AFpaWlpaWlpaWlpa' +
  'WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWloAAKDAAACAwAAAQMAAAADAAACAvwAAAAAAAIA/AAAAQAAAQEAAAIBAAA' +
  'CgQAAAwEBQSwcIn67DtzAAAAAwAAAAUEsDBAAACAgAAAAAAAAAAAAAAAAAAAAAAAAOABQAYXJjaGl2ZS9kYXRhLzVGQhAAWlpaWlpaWlpaWlpa' +
  'WlpaWsA/QMCDOlBLBwgHTEJfBgAAAAYAAABQSwMEAAAICAAAAAAAAAAAAAAAAAAAAAAAAA4APgBhcmNoaXZlL2RhdGEvNkZCOgBaWlpaWlpaWl' +
  'paWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaVVVVVVVV1T8AAAAAAAAAwFBLBwjI8E0qEAAAABAAAABQ' +
  'SwMEAAAICAAAAAAAAAAAAAAAAAAAAAAAAA4ANABhcmNoaXZlL2RhdGEvN0ZCMABaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWl' +
  'paWlpaWlpaWlpaWlosAQAAAAAAAFBLBwjEo4xtCAAAAAgAAABQSwMEAAAICAAAAAAAAAAAAAAAAAAAAAAAAA8AOwBhcmNoaXZlL3ZlcnNpb25G' +
  'QjcAWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWjMKUEsHCNGeZ1UCAAAAAgAAAFBLAQIAAA' +
  'AACAgAAAAAAABSDe8C0wMAANMDAAAQAAAAAAAAAAAAAAAAAAAAAABhcmNoaXZlL2RhdGEucGtsUEsBAgAAAAAICAAAAAAAAIqii5/YAAAA2AAA' +
  'AA4AAAAAAAAAAAAAAAAAIwQAAGFyY2hpdmUvZGF0YS8wUEsBAgAAAAAICAAAAAAAAG2Jd9YIAAAACAAAAA4AAAAAAAAAAAAAAAAAaAUAAGFyY2' +
  'hpdmUvZGF0YS8xUEsBAgAAAAAICAAAAAAAAJY9LCUoAAAAKAAAAA4AAAAAAAAAAAAAAAAA2AUAAGFyY2hpdmUvZGF0YS8yUEsBAgAAAAAICAAA' +
  'AAAAALdgpN8MAAAADAAAAA4AAAAAAAAAAAAAAAAAeAYAAGFyY2hpdmUvZGF0YS8zUEsBAgAAAAAICAAAAAAAAJ+uw7cwAAAAMAAAAA4AAAAAAA' +
  'AAAAAAAAAA3AYAAGFyY2hpdmUvZGF0YS80UEsBAgAAAAAICAAAAAAAAAdMQl8GAAAABgAAAA4AAAAAAAAAAAAAAAAAgAcAAGFyY2hpdmUvZGF0' +
  'YS81UEsBAgAAAAAICAAAAAAAAMjwTSoQAAAAEAAAAA4AAAAAAAAAAAAAAAAA1gcAAGFyY2hpdmUvZGF0YS82UEsBAgAAAAAICAAAAAAAAMSjjG' +
  '0IAAAACAAAAA4AAAAAAAAAAAAAAAAAYAgAAGFyY2hpdmUvZGF0YS83UEsBAgAAAAAICAAAAAAAANGeZ1UCAAAAAgAAAA8AAAAAAAAAAAAAAAAA' +
  '2AgAAGFyY2hpdmUvdmVyc2lvblBLBgYsAAAAAAAAAB4DLQAAAAAAAAAAAAoAAAAAAAAACgAAAAAAAABbAgAAAAAAAFIJAAAAAAAAUEsGBwAAAA' +
  'CtCwAAAAAAAAEAAABQSwUGAAAAAAoACgBbAgAAUgkAAAAA'
);
// torch.save({'epoch': 3, 'lr': 0.001, 'state_dict': {'conv.weight': torch.tensor([[1.0, 2.0]]),
//             'conv.bias': torch.tensor([-1.0])}, 'name': 'TransformerNet'}, io.BytesIO())   (torch 1.13.1)
const GOLDEN2 = b64(
  'UEsDBAAACAgAAAAAAAAAAAAAAAAAAAAAAAAQABIAYXJjaGl2ZS9kYXRhLnBrbEZCDgBaWlpaWlpaWlpaWlpaWoACfXEAKFgFAAAAZXBvY2hxAU' +
  'sDWAIAAABscnECRz9QYk3S8an8WAoAAABzdGF0ZV9kaWN0cQN9cQQoWAsAAABjb252LndlaWdodHEFY3RvcmNoLl91dGlscwpfcmVidWlsZF90' +
  'ZW5zb3JfdjIKcQYoKFgHAAAAc3RvcmFnZXEHY3RvcmNoCkZsb2F0U3RvcmFnZQpxCFgBAAAAMHEJWAMAAABjcHVxCksCdHELUUsASwFLAoZxDE' +
  'sCSwGGcQ2JY2NvbGxlY3Rpb25zCk9yZGVyZWREaWN0CnEOKVJxD3RxEFJxEVgJAAAAY29udi5iaWFzcRJoBigoaAdoCFgBAAAAMXETaApLAXRx' +
  'FFFLAEsBhXEVSwGFcRaJaA4pUnEXdHEYUnEZdVgEAAAAbmFtZXEaWA4AAABUcmFuc2Zvcm1lck5ldHEbdS5QSwcI/t+yhUgBAABIAQAAUEsDBA' +
  'AACAgAAAAAAAAAAAAAAAAAAAAAAAAOADwAYXJjaGl2ZS9kYXRhLzBGQjgAWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpa' +
  'WlpaWlpaWlpaWlpaWlpaWloAAIA/AAAAQFBLBwh2pT8uCAAAAAgAAABQSwMEAAAICAAAAAAAAAAAAAAAAAAAAAAAAA4APABhcmNoaXZlL2RhdG' +
  'EvMUZCOABaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWgAAgL9QSwcISukZQQQAAAAEAAAA' +
  'UEsDBAAACAgAAAAAAAAAAAAAAAAAAAAAAAAPAD8AYXJjaGl2ZS92ZXJzaW9uRkI7AFpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWl' +
  'paWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaMwpQSwcI0Z5nVQIAAAACAAAAUEsBAgAAAAAICAAAAAAAAP7fsoVIAQAASAEAABAAAAAAAAAAAAAA' +
  'AAAAAAAAAGFyY2hpdmUvZGF0YS5wa2xQSwECAAAAAAgIAAAAAAAAdqU/LggAAAAIAAAADgAAAAAAAAAAAAAAAACYAQAAYXJjaGl2ZS9kYXRhLz' +
  'BQSwECAAAAAAgIAAAAAAAASukZQQQAAAAEAAAADgAAAAAAAAAAAAAAAAAYAgAAYXJjaGl2ZS9kYXRhLzFQSwECAAAAAAgIAAAAAAAA0Z5nVQIA' +
  'AAACAAAADwAAAAAAAAAAAAAAAACUAgAAYXJjaGl2ZS92ZXJzaW9uUEsGBiwAAAAAAAAAHgMtAAAAAAAAAAAABAAAAAAAAAAEAAAAAAAAAPMAAA' +
  'AAAAAAEgMAAAAAAABQSwYHAAAAAAUEAAAAAAAAAQAAAFBLBQYAAAAABAAEAPMAAAASAwAAAAA='
);

/** The object of GOLDEN1 built with the test writer. */
function golden1Object(): OrderedDict {
  const base = Storage.f32(range(10, (i) => i * 0.25));
  return new OrderedDict(
    [
      ['conv1.conv2d.weight', f32(range(54, (i) => (i - 20) / 8), [2, 3, 3, 3])],
      ['conv1.conv2d.bias', f32([0.5, -1.5], [2])],
      ['in1.weight', new Tensor(base, [3], [1], 4)],
      ['in1.bias', new Tensor(base, [3], [1], 0)],
      ['res1.conv1.conv2d.weight', new Tensor(Storage.bits16('F16', u16([15360, -16128, 12288, 31743, -32768, 1023])), [3, 2])],
      ['deconv1.conv2d.weight', new Tensor(Storage.f32(range(12, (i) => i - 5)), [4, 3], [1, 4])],
      ['up.weight', new Tensor(Storage.bits16('BF16', u16([16320, -16320, 14979])), [3])],
      ['d.weight', new Tensor(Storage.f64([1 / 3, -2]), [2])],
      ['bn.num_batches_tracked', new Tensor(Storage.i64([300]), [])],
    ],
    [['', { version: 1 }], ['conv1', { version: 1 }], ['conv1.conv2d', { version: 1 }], ['in1', { version: 1 }], ['bn', { version: 2 }]],
  );
}

function expectTensor(t: { data: Float32Array; shape: number[] } | undefined, shape: number[], values: ArrayLike<number>) {
  expect(t, 'tensor present').toBeDefined();
  expect(t!.shape).toEqual(shape);
  expect(t!.data).toBeInstanceOf(Float32Array);
  expect(Array.from(t!.data)).toEqual(Array.from(Float32Array.from(values))); // exact, -0 and NaN included
}

/** Row-major values of a view (offset, shape, stride) of `storage`, written from the definition of strides. */
function viewValues(storage: ArrayLike<number>, shape: number[], stride: number[], offset: number): number[] {
  const out: number[] = [];
  const walk = (d: number, at: number) => {
    if (d === shape.length) return void out.push(storage[at]);
    for (let i = 0; i < shape[d]; i++) walk(d + 1, at + i * stride[d]);
  };
  walk(0, offset);
  return out;
}

describe('torch.save files written by PyTorch', () => {
  it('the test writer reproduces torch.save byte for byte', () => {
    expect(torchSave(golden1Object())).toEqual(GOLDEN1);
    const sd2 = new Map<string, PyValue>([
      ['epoch', 3],
      ['lr', 0.001],
      ['state_dict', new Map([['conv.weight', f32([1, 2], [1, 2])], ['conv.bias', f32([-1], [1])]])],
      ['name', 'TransformerNet'],
    ]);
    expect(torchSave(sd2)).toEqual(GOLDEN2);
  });

  it('reads every dtype, view, shared storage and the int64 scalar exactly', () => {
    const { tensors, skipped } = readPth(GOLDEN1, 'golden1.pth');
    expect([...tensors.keys()]).toEqual(golden1Object().entries.map(([k]) => k));
    expect(skipped).toEqual([]);
    expectTensor(tensors.get('conv1.conv2d.weight'), [2, 3, 3, 3], range(54, (i) => (i - 20) / 8));
    expectTensor(tensors.get('conv1.conv2d.bias'), [2], [0.5, -1.5]);
    expectTensor(tensors.get('in1.weight'), [3], [1, 1.25, 1.5]); // storage offset 4
    expectTensor(tensors.get('in1.bias'), [3], [0, 0.25, 0.5]); // same storage, offset 0
    expectTensor(tensors.get('res1.conv1.conv2d.weight'), [3, 2], [1, -2.5, 0.125, 65504, -0, 1023 * 2 ** -24]);
    // (arange(12).reshape(3,4) - 5).t(): element [r][c] = 4c + r - 5
    expectTensor(tensors.get('deconv1.conv2d.weight'), [4, 3], range(12, (i) => 4 * (i % 3) + Math.floor(i / 3) - 5));
    expectTensor(tensors.get('up.weight'), [3], [1.5, -3, 0.00099945068359375]);
    expectTensor(tensors.get('d.weight'), [2], [Math.fround(1 / 3), -2]);
    expectTensor(tensors.get('bn.num_batches_tracked'), [], [300]); // a 0-dim tensor: shape [], one value
    expect(tensors.get('res1.conv1.conv2d.weight')!.dtype).toBe('F16');
    expect(tensors.get('bn.num_batches_tracked')!.dtype).toBe('I64');
  });

  it('unwraps a training checkpoint {"epoch", "lr", "state_dict", ...}', () => {
    const { tensors } = readPth(GOLDEN2, 'golden2.pth');
    expect([...tensors.keys()]).toEqual(['conv.weight', 'conv.bias']);
    expectTensor(tensors.get('conv.weight'), [1, 2], [1, 2]);
    expectTensor(tensors.get('conv.bias'), [1], [-1]);
  });
});

describe('torch.save files from the test writer', () => {
  const r = rng(7);
  const rand = (n: number) => Float32Array.from(randn(n, r));
  /** A TransformerNet-style state dict (pytorch/examples fast_neural_style names) with every special case. */
  function transformerNet() {
    const w1 = rand(4 * 3 * 9 * 9);
    const shared = rand(20);
    const wt = rand(6 * 5); // stored [6,5], saved as its transpose [5,6]
    const halfBits = [0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00, 0xc000, 0x7bff, 0x7c00, 0xfc00, 0x3555, 0x7e00];
    const sd = new OrderedDict(
      [
        ['conv1.conv2d.weight', new Tensor(new Storage('F32', new Uint8Array(w1.buffer)), [4, 3, 9, 9])],
        ['conv1.conv2d.bias', f32(rand(4), [4])],
        ['in1.weight', new Tensor(new Storage('F32', new Uint8Array(shared.buffer)), [4], [1], 0)],
        ['in1.bias', new Tensor(new Storage('F32', new Uint8Array(shared.buffer)), [4], [1], 4)], // distinct storage objects
        ['res1.in1.weight', new Tensor(Storage.bits16('F16', halfBits), [3, 4])],
        ['deconv1.conv2d.weight', new Tensor(new Storage('F32', new Uint8Array(wt.buffer)), [5, 6], [1, 5])],
        ['bn.running_mean', new Tensor(Storage.f32(range(20, (i) => i)), [2, 2, 2], [8, 1, 2], 3)], // offset + permuted strides
        ['bn.num_batches_tracked', new Tensor(Storage.i64([12345678901]), [])],
        ['conv1.conv2d.bias_copy', new Tensor(Storage.f32(range(7, (i) => -i)), [7])],
      ],
      [['', { version: 1 }], ['conv1', { version: 1 }], ['conv1.conv2d', { version: 1 }]],
    );
    return { sd, w1, shared, wt };
  }

  it('reads back a TransformerNet-style state dict exactly', () => {
    const { sd, w1, shared, wt } = transformerNet();
    const { tensors } = readPth(torchSave(sd, { archiveName: 'transformer_net' }), 'transformer_net.pth');
    expectTensor(tensors.get('conv1.conv2d.weight'), [4, 3, 9, 9], w1);
    expectTensor(tensors.get('in1.weight'), [4], shared.subarray(0, 4));
    expectTensor(tensors.get('in1.bias'), [4], shared.subarray(4, 8));
    const h = 2 ** -24;
    expectTensor(tensors.get('res1.in1.weight'), [3, 4], [0, -0, h, 1023 * h, 2 ** -14, 1, -2, 65504, Infinity, -Infinity, 0.333251953125, NaN]);
    expectTensor(tensors.get('deconv1.conv2d.weight'), [5, 6], viewValues(wt, [5, 6], [1, 5], 0));
    expectTensor(tensors.get('bn.running_mean'), [2, 2, 2], viewValues(range(20, (i) => i), [2, 2, 2], [8, 1, 2], 3));
    expectTensor(tensors.get('bn.num_batches_tracked'), [], [12345678901]);
    expectTensor(tensors.get('conv1.conv2d.bias_copy'), [7], range(7, (i) => -i));
  });

  it('one tensor object saved under two names (tied weights) is stored once and read twice', () => {
    const t = f32([1, 2, 3], [3]);
    const bytes = torchSave(new OrderedDict([['enc.weight', t], ['dec.weight', t]]));
    const { tensors } = readPth(bytes);
    expectTensor(tensors.get('enc.weight'), [3], [1, 2, 3]);
    expectTensor(tensors.get('dec.weight'), [3], [1, 2, 3]);
  });

  it('skips non-tensor values and unwraps "model"', () => {
    const inner = new OrderedDict([['w', f32([5], [1])], ['step', 3], ['name', 'x'], ['f', new PyFloat(2)], ['flag', true], ['none', null]]);
    const { tensors, skipped } = readPth(torchSave(new Map<string, PyValue>([['model', inner], ['epoch', 9]])));
    expect([...tensors.keys()]).toEqual(['w']);
    expect(skipped).toEqual(['step', 'name', 'f', 'flag', 'none']);
  });

  it('handles many tensors (LONG_BINPUT memo, SETITEMS batches), the byteorder record and deflated entries', () => {
    const entries = Array.from({ length: 1001 }, (_, i): [string, PyValue] => [`layers.${i}.weight`, f32([i, -i], [2])]);
    const bytes = torchSave(new OrderedDict(entries), { byteorder: true });
    const { tensors } = readPth(bytes);
    expect(tensors.size).toBe(1001);
    expectTensor(tensors.get('layers.1000.weight'), [2], [1000, -1000]);
    expectTensor(tensors.get('layers.257.weight'), [2], [257, -257]);

    // The same records re-zipped with deflate (as some tools re-pack checkpoints).
    const small = torchSave(golden1Object());
    const records: Record<string, Uint8Array> = {};
    const { pickle, storages } = torchPickle(golden1Object());
    records['archive/data.pkl'] = pickle;
    for (const [k, s] of storages) records[`archive/data/${k}`] = s.bytes;
    records['archive/version'] = new TextEncoder().encode('3\n');
    const deflated = zipSync(records, { level: 6 });
    expect(deflated.length).toBeLessThan(small.length);
    const a = readPth(small).tensors;
    const b = readPth(deflated).tensors;
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [k, t] of a) expect(Array.from(b.get(k)!.data), k).toEqual(Array.from(t.data));
  });

  it('its tensors pass checkTensors and convert to safetensors', () => {
    const { tensors } = readPth(torchSave(golden1Object()));
    checkTensors('golden1.pth', tensors, { 'conv1.conv2d.weight': [2, 3, 3, 3], 'in1.weight': [3] }, { allowExtra: true });
    expect(() => checkTensors('golden1.pth', tensors, { 'conv1.conv2d.weight': [2, 3, 3, 1] }, { allowExtra: true })).toThrow(
      'golden1.pth: tensor conv1.conv2d.weight: expected shape [2,3,3,1], found [2,3,3,3]',
    );
    expect(writeSafetensors(tensors).length).toBeGreaterThan(0);
  });
});

describe('readPth errors', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const withPickle = (pkl: number[] | Uint8Array, extra: [string, Uint8Array][] = []) =>
    torchZip([['archive/data.pkl', Uint8Array.from(pkl)], ...extra, ['archive/version', enc('3\n')]]);
  const bytesOf = (s: string) => Array.from(s, (c) => c.charCodeAt(0));
  const err = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(WeightFileError);
      return (e as Error).message;
    }
    throw new Error('expected an error');
  };

  it('not a zip', () => {
    expect(err(() => readPth(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), 'x.pth'))).toBe(
      'x.pth: not a zip archive (torch.save format): it starts with 01 02 03 04 instead of 50 4b 03 04',
    );
    const st = writeSafetensors({ w: { data: new Float32Array(2), shape: [2] } });
    expect(err(() => readPth(st, 'w.pth'))).toBe('w.pth: not a zip archive (torch.save format); it looks like safetensors: read it with readSafetensors');
  });

  it('legacy (pre-1.6) torch.save files', () => {
    // The first bytes of torch.save(..., _use_new_zipfile_serialization=False): PROTO 2, LONG1 magic 0x1950a86a20f9469cfc6c
    const legacy = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e]);
    expect(err(() => readPth(legacy, 'old.pth'))).toBe(
      'old.pth: this is a legacy (pre-1.6, non-zip) torch.save file, which is not supported: re-save it with PyTorch >= 1.6 (torch.save(torch.load(f), g)) or convert it to safetensors',
    );
  });

  it('truncated file', () => {
    const full = torchSave(golden1Object());
    expect(err(() => readPth(full.subarray(0, 1000), 'cut.pth'))).toBe('cut.pth: the zip archive has no end of central directory: file truncated?');
  });

  it('zip without data.pkl', () => {
    const z = torchZip([['archive/weights.bin', new Uint8Array(8)], ['archive/version', enc('3\n')]]);
    expect(err(() => readPth(z, 'z.pth'))).toBe(
      'z.pth: zip archive without <archive>/data.pkl: not a torch.save checkpoint (entries: archive/weights.bin, archive/version)',
    );
  });

  it('missing or short storage record', () => {
    const { pickle, storages } = torchPickle(new OrderedDict([['a.weight', f32([1, 2], [2])], ['b.weight', f32([1, 2, 3], [3])]]));
    expect(storages.size).toBe(2);
    expect(err(() => readPth(withPickle(pickle, [['archive/data/0', storages.get('0')!.bytes]]), 'm.pth'))).toBe(
      'm.pth: tensor b.weight: storage record data/1 is missing from the archive',
    );
    const short = withPickle(pickle, [['archive/data/0', storages.get('0')!.bytes], ['archive/data/1', new Uint8Array(8)]]);
    expect(err(() => readPth(short, 'm.pth'))).toBe(
      'm.pth: tensor b.weight: storage record archive/data/1 has 8 bytes, a torch.FloatStorage of 3 elements needs 12',
    );
  });

  it('a view beyond its storage', () => {
    const bytes = torchSave(new OrderedDict([['w', new Tensor(Storage.f32([1, 2, 3, 4]), [2, 2], [2, 1], 1)]]));
    expect(err(() => readPth(bytes, 'v.pth'))).toBe('v.pth: tensor w: view (offset 1, size [2,2], stride [2,1]) reaches element 4 of a storage of 4 elements');
  });

  it('unsupported pickle opcode, unsupported globals, whole pickled models', () => {
    expect(err(() => readPth(withPickle([0x80, 0x02, 0x82, 0x01, 0x2e]), 'p.pth'))).toBe(
      'p.pth: archive/data.pkl: unsupported pickle opcode EXT1 (0x82) at byte 2',
    );
    expect(err(() => readPth(withPickle([0x80, 0x02, 0xff]), 'p.pth'))).toBe('p.pth: archive/data.pkl: unknown pickle opcode 0xff at byte 2: corrupt pickle');
    const q = [0x80, 0x02, ...bytesOf('ctorch._utils\n_rebuild_qtensor\n'), 0x29, 0x52, 0x2e];
    expect(err(() => readPth(withPickle(q), 'q.pth'))).toContain(
      'q.pth: archive/data.pkl: unsupported pickle global torch._utils._rebuild_qtensor (only dense tensors rebuilt by torch._utils._rebuild_tensor_v2 are supported)',
    );
    const c = [0x80, 0x02, ...bytesOf('ctorch\nComplexFloatStorage\n'), 0x2e];
    expect(err(() => readPth(withPickle(c), 'c.pth'))).toContain('unsupported pickle global torch.ComplexFloatStorage: storage type not supported');
    // torch.save(model): GLOBAL models TransformerNet, EMPTY_TUPLE, NEWOBJ, EMPTY_DICT, BUILD
    const m = [0x80, 0x02, ...bytesOf('cmodels\nTransformerNet\n'), 0x29, 0x81, 0x7d, 0x62, 0x2e];
    expect(err(() => readPth(withPickle(m), 'whole.pth'))).toBe(
      'whole.pth: the checkpoint holds a pickled models.TransformerNet object, not a state dict: re-save it with torch.save(model.state_dict(), path)',
    );
    expect(err(() => readPth(torchSave(new Map<string, PyValue>([['epoch', 1], ['arch', 'vgg']])), 'e.pth'))).toBe(
      'e.pth: no tensors found: top-level keys are epoch, arch (expected a state dict, or a dict with a "state_dict"/"model_state_dict"/"model"/"net" entry holding one)',
    );
    expect(err(() => readPth(withPickle([0x80, 0x02, 0x7d]), 't.pth'))).toContain('pickle truncated: no STOP opcode before the end (3 bytes)');
  });
});

describe('unpickle', () => {
  it('decodes the values torch.save writes (the same bytes as CPython, see above)', () => {
    const ints = [0, 255, 256, 65535, 65536, -1, -256, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1, 2 ** 40, -(2 ** 52)];
    const obj = new Map<string, PyValue>([
      ...ints.map((v, i): [string, PyValue] => [`i${i}`, v]),
      ['f', 0.1],
      ['F', new PyFloat(2)],
      ['t', true],
      ['n', null],
      ['s', 'héllo ✓'],
      ['d', new Map([['x', 1]])],
    ]);
    const v = unpickle(torchPickle(obj).pickle) as PyDict;
    expect(v).toBeInstanceOf(PyDict);
    ints.forEach((x, i) => expect(v.get(`i${i}`), `int ${x}`).toBe(x));
    expect(v.get('f')).toBe(0.1);
    expect(v.get('F')).toBe(2);
    expect(v.get('t')).toBe(true);
    expect(v.get('n')).toBe(null);
    expect(v.get('s')).toBe('héllo ✓');
    expect((v.get('d') as PyDict).get('x')).toBe(1);
  });

  it('reads protocol 4/5 opcodes and keeps OrderedDict attributes from BUILD', () => {
    // PROTO 4, FRAME, SHORT_BINUNICODE 'collections', MEMOIZE, SHORT_BINUNICODE 'OrderedDict', MEMOIZE, STACK_GLOBAL,
    // MEMOIZE, EMPTY_TUPLE, REDUCE, MEMOIZE, SHORT_BINUNICODE 'k', LONG1 -2 (0xfe), SETITEM,
    // EMPTY_DICT, SHORT_BINUNICODE '_metadata', BINGET 2 (the class), EMPTY_TUPLE, REDUCE, SETITEM, BUILD, STOP
    const p = [0x80, 4, 0x95, 0, 0, 0, 0, 0, 0, 0, 0, 0x8c, 11, ...bytesOf('collections'), 0x94, 0x8c, 11, ...bytesOf('OrderedDict'), 0x94, 0x93, 0x94,
      0x29, 0x52, 0x94, 0x8c, 1, 0x6b, 0x8a, 1, 0xfe, 0x73, 0x7d, 0x8c, 9, ...bytesOf('_metadata'), 0x68, 2, 0x29, 0x52, 0x73, 0x62, 0x2e];
    const v = unpickle(Uint8Array.from(p)) as PyDict;
    expect(v.cls).toBe('collections.OrderedDict');
    expect([...v]).toEqual([['k', -2]]);
    expect(v.attrs.get('_metadata')).toBeInstanceOf(PyDict);
  });

  it('names what it cannot do', () => {
    expect(() => unpickle(Uint8Array.from([0x80, 2, 0x68, 7, 0x2e]))).toThrow(new UnpicklingError('memo entry 7 was never stored: corrupt pickle (opcode BINGET (0x68) at byte 2)'));
    expect(() => unpickle(Uint8Array.from([0x80, 2, 0x97, 0x2e]))).toThrow('unsupported pickle opcode NEXT_BUFFER (0x97)');
    expect(() => unpickle(Uint8Array.from([0x80, 2, 0x51, 0x2e]))).toThrow('stack underflow');
  });
});

function bytesOf(s: string): number[] {
  return Array.from(s, (c) => c.charCodeAt(0));
}
