// loadModel for Node: a string is a path (or a file:/http(s): URL), as the CLI and scripts expect.
import { readSourceNode } from '../io/source-node.js';
import { modelLoader, type LoadModel } from './model.js';

export const loadModel: LoadModel = modelLoader(readSourceNode);
