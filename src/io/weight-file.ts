// A weight file's tensors, whatever its format: safetensors, or a torch.save checkpoint (zip or legacy pickle),
// told apart by content.
import { readPth } from './pth.js';
import { readSafetensors, type LoadedTensor, type ReadWeightsOptions } from './safetensors.js';

export interface WeightTensors {
  tensors: Map<string, LoadedTensor>;
  /** safetensors `__metadata__` (empty for .pth files). */
  metadata: Record<string, string>;
}

/**
 * Parses a safetensors file or a torch.save checkpoint, chosen by content (a zip or pickle is a checkpoint). The
 * tensors' values are made on first access of `data`, within `opts.maxBytes` (see ReadWeightsOptions), so a caller
 * that checks names and shapes first pays nothing for a file it rejects.
 */
export function readWeightBytes(bytes: Uint8Array, file = 'weight file', opts: ReadWeightsOptions = {}): WeightTensors {
  const zip = bytes.length >= 2 && bytes[0] === 0x50 && bytes[1] === 0x4b;
  const pickle = bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] <= 5;
  if (zip || pickle) return { tensors: readPth(bytes, file, opts).tensors, metadata: {} };
  const st = readSafetensors(bytes, file, opts);
  return { tensors: st.tensors, metadata: st.metadata };
}
