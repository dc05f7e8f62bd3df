// loadLossNetwork for Node: a string is a path (or a file:/http(s): URL).
import { readSourceNode } from '../io/source-node.js';
import { lossNetworkLoader, type LoadLossNetwork } from './loss-network.js';

export const loadLossNetwork: LoadLossNetwork = lossNetworkLoader(readSourceNode);
