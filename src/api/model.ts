// Loading a style model (safetensors or a pytorch/examples .pth) from bytes or a URL, anywhere. The Node
// entry's loadModel (model-node.ts) reads local paths too.
import type { Gpu } from '../gpu/index.js';
import { readSource, type Source, type SourceBytes } from '../io/source.js';
import { loadTransformerNet, type LoadTransformerNetOptions } from '../nets/model-file.js';
import type { TransformerNet } from '../nets/transformer-net.js';

/** Bytes, or a URL (fetched); in Node also a path. */
export type ModelSource = Source;

export type LoadModel = (gpu: Gpu, source: ModelSource, opts?: LoadTransformerNetOptions) => Promise<TransformerNet>;

/** loadModel with the given way of reading a source (the Node entry's reads paths too). */
export function modelLoader(read: (source: Source) => Promise<SourceBytes>): LoadModel {
  return async (gpu, source, opts = {}) => {
    const { bytes, name } = await read(source);
    const net = loadTransformerNet(gpu, bytes, { ...opts, file: opts.file ?? name });
    net.eval();
    return net;
  };
}

export const loadModel: LoadModel = modelLoader(readSource);
