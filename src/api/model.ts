// Loading a style model (safetensors or a pytorch/examples .pth) from bytes or a URL, anywhere. The Node
// entry's loadModel (model-node.ts) reads local paths too.
import type { Gpu } from '../gpu/index.js';
import { readSource, type Source } from '../io/source.js';
import { loadTransformerNet, type LoadTransformerNetOptions } from '../nets/model-file.js';
import type { TransformerNet } from '../nets/transformer-net.js';

/** Bytes, or a URL (fetched); in Node also a path. */
export type ModelSource = Source;

export async function loadModel(gpu: Gpu, source: ModelSource, opts: LoadTransformerNetOptions = {}): Promise<TransformerNet> {
  const { bytes, name } = await readSource(source);
  const net = loadTransformerNet(gpu, bytes, { ...opts, file: opts.file ?? name });
  net.eval();
  return net;
}
