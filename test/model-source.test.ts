// Where models load from: bytes and ArrayBuffers anywhere, URLs fetched (what the browser entry's loadModel
// does with a string), and in Node also paths and file: URLs. A failed fetch names the URL and the status.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL } from '../src/api/default-model.js';
import { loadModel } from '../src/api/model.js';
import { loadModel as loadModelNode } from '../src/api/model-node.js';
import { readSource } from '../src/io/source.js';
import { readSourceNode } from '../src/io/source-node.js';
import type { TransformerNet } from '../src/nets/transformer-net.js';
import { useGpu } from './helpers/gpu.js';

const PATH = fileURLToPath(DEFAULT_MODEL.url);
const BYTES = new Uint8Array(readFileSync(PATH));
// Byte-wise, fast: a deep equality over 1.7 M elements takes seconds each.
const isModel = (r: { bytes: Uint8Array }) => Buffer.compare(r.bytes, BYTES) === 0;

describe('model sources', () => {
  const gpu = useGpu();
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/model.safetensors') res.writeHead(200).end(BYTES);
      else res.writeHead(404, 'Not Found').end();
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

  it('reads bytes as given, fetches URLs, and in Node reads paths and file: URLs', async () => {
    const url = `${base}/model.safetensors`;
    expect((await readSource(BYTES)).bytes).toBe(BYTES);
    const cases: [Awaited<ReturnType<typeof readSource>>, string | undefined][] = [
      [await readSource(BYTES.slice().buffer), undefined],
      [await readSource(url), url],
      [await readSource(new URL('/model.safetensors', base)), url],
      [await readSourceNode(PATH), PATH],
      [await readSourceNode(pathToFileURL(PATH)), PATH],
      [await readSourceNode(pathToFileURL(PATH).href), PATH],
      [await readSourceNode(url), url],
    ];
    for (const [r, name] of cases) {
      expect(r.name).toBe(name);
      expect(isModel(r), name).toBe(true);
    }
  });

  it('a failed fetch names the URL and the HTTP status; a path given to the shared loader is named as one', async () => {
    await expect(readSource(`${base}/missing.safetensors`)).rejects.toThrow(`cannot fetch ${base}/missing.safetensors: HTTP 404 Not Found`);
    await expect(loadModel(gpu(), `${base}/missing.safetensors`)).rejects.toThrow(/HTTP 404/);
    // The shared loader in Node, given a path: said plainly, not a fetch error about URL parsing.
    await expect(readSource('models/x.safetensors')).rejects.toThrow("cannot fetch models/x.safetensors: not a URL (paths are read by the Node entry's loaders");
  });

  it('loadModel gives the same network from a URL, bytes, a path and a file: URL', async () => {
    const nets: TransformerNet[] = [
      await loadModel(gpu(), `${base}/model.safetensors`),
      await loadModel(gpu(), BYTES.slice().buffer),
      await loadModelNode(gpu(), PATH),
      await loadModelNode(gpu(), DEFAULT_MODEL.url),
    ];
    try {
      const ref = nets[1].stateDict();
      for (const net of nets) {
        expect(net.training).toBe(false);
        const sd = net.stateDict();
        expect([...sd.keys()]).toEqual([...ref.keys()]);
        for (const [k, t] of sd) expect(Buffer.compare(new Uint8Array((await t.data()).buffer), new Uint8Array((await ref.get(k)!.data()).buffer)), k).toBe(0);
      }
    } finally {
      for (const n of nets) n.dispose();
    }
  });
});
