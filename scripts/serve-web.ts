// `npm run demo:web [-- --port N] [--host H]` (or PORT=N): builds the page and serves it. Static files only,
// from the folders the page uses (web/, dist/web/, models/, examples/); '/' redirects to the page.
// The browser test serves through serveWeb() too.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { ROOT, buildWeb } from './build-web.js';

const SERVED = ['web', 'dist/web', 'models', 'examples'];
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.css': 'text/css',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.safetensors': 'application/octet-stream',
  '.pth': 'application/octet-stream',
};

export interface WebServer {
  url: string;
  close(): Promise<void>;
}

/** The file a URL path names, or null when it lies outside the served folders. */
function fileFor(urlPath: string, root: string): string | null {
  let rel: string;
  try {
    rel = normalize(decodeURIComponent(urlPath)).replace(/^[/\\]+/, '');
  } catch {
    return null;
  }
  const path = resolve(root, rel);
  const ok = SERVED.some((d) => path === resolve(root, d) || path.startsWith(resolve(root, d) + sep));
  return ok ? path : null;
}

/** Serves the page on host:port (port 0: any free one). */
export function serveWeb(opts: { port?: number; host?: string; root?: string } = {}): Promise<WebServer> {
  const root = opts.root ?? ROOT;
  const server = createServer(async (req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    if (pathname === '/' || pathname === '/web') {
      res.writeHead(302, { location: '/web/' }).end();
      return;
    }
    let path = fileFor(pathname, root);
    if (path && pathname.endsWith('/')) path = join(path, 'index.html');
    const info = path ? await stat(path).catch(() => null) : null;
    if (!path || !info?.isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${pathname}\n`);
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream',
      'content-length': info.size,
      'cache-control': 'no-cache',
    });
    createReadStream(path).pipe(res);
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      const { address, port } = server.address() as AddressInfo;
      const host = address.includes(':') ? `[${address}]` : address;
      ok({
        url: `http://${host}:${port}/web/`,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string' } } });
  const port = Number(values.port ?? process.env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`serve-web: invalid port ${values.port ?? process.env.PORT}`);
  await buildWeb();
  const { url } = await serveWeb({ port, host: values.host });
  console.log(`Demo page: ${url}  (Ctrl-C stops; WebGPU needs a secure context: localhost or https)`);
}
