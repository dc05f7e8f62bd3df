// Exits 0 when Dawn finds a WebGPU adapter on this machine, 1 otherwise.
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
process.env.XDG_RUNTIME_DIR ??= '/tmp';
let gpu = create([]);
const adapter = await gpu.requestAdapter();
gpu = null;
if (adapter) console.log(`probe-adapter: found ${adapter.info.vendor} ${adapter.info.architecture} ${adapter.info.description}`.trim());
else console.log('probe-adapter: no WebGPU adapter');
process.exit(adapter ? 0 : 1);
