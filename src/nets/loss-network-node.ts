// loadLossNetwork for Node: a string is a path (or a file:/http(s): URL).
import type { Gpu } from '../gpu/index.js';
import { readSourceNode } from '../io/source-node.js';
import type { Source } from '../io/source.js';
import { loadLossNetwork as loadLossNetworkBytes, type LoadLossNetworkOptions, type LossNetworkName, type LossNetworkTypes } from './loss-network.js';

export async function loadLossNetwork<N extends LossNetworkName>(
  gpu: Gpu,
  name: N,
  source: Source,
  opts: LoadLossNetworkOptions = {},
): Promise<LossNetworkTypes[N]> {
  const { bytes, name: path } = await readSourceNode(source);
  return loadLossNetworkBytes(gpu, name, bytes, { ...opts, file: opts.file ?? path });
}
