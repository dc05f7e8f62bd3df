// loadModel for Node: a string is a path (or a file:/http(s): URL), as the CLI and scripts expect.
import type { Gpu } from '../gpu/index.js';
import { readSourceNode } from '../io/source-node.js';
import type { LoadTransformerNetOptions } from '../nets/model-file.js';
import type { TransformerNet } from '../nets/transformer-net.js';
import { loadModel as loadModelBytes, type ModelSource } from './model.js';

export async function loadModel(gpu: Gpu, source: ModelSource, opts: LoadTransformerNetOptions = {}): Promise<TransformerNet> {
  const { bytes, name } = await readSourceNode(source);
  return loadModelBytes(gpu, bytes, { ...opts, file: opts.file ?? name });
}
