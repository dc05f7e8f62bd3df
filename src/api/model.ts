// Loading a style model from a path (Node) or bytes (anywhere): safetensors or a pytorch/examples .pth.
import type { Gpu } from '../gpu/index.js';
import { loadTransformerNet, type LoadTransformerNetOptions } from '../nets/model-file.js';
import type { TransformerNet } from '../nets/transformer-net.js';

export type ModelSource = string | Uint8Array | ArrayBuffer;

export async function loadModel(gpu: Gpu, source: ModelSource, opts: LoadTransformerNetOptions = {}): Promise<TransformerNet> {
  let bytes: Uint8Array;
  let file = opts.file;
  if (typeof source === 'string') {
    const { readFile } = await import('node:fs/promises');
    bytes = new Uint8Array(await readFile(source));
    file ??= source;
  } else bytes = source instanceof Uint8Array ? source : new Uint8Array(source);
  const net = loadTransformerNet(gpu, bytes, { ...opts, file });
  net.eval();
  return net;
}
