// `perceptual weights fetch`: download (progress, resume with Range, fallback without it, timeouts, HTTP errors,
// redirects), checksum verification and conversion to safetensors, against a local HTTP server on 127.0.0.1 that
// serves a small generated torch.save checkpoint. Also the CLI command in-process and the progress line formatter.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { weights } from '../src/cli/weights.js';
import { Progress, formatBytes, formatDuration, formatProgress, formatRate } from '../src/cli/progress.js';
import { ChecksumError, DownloadError, defaultCacheDir, fetchWeights, maxDownloadBytes, redirectAllowed } from '../src/io/fetch.js';
import { readPth } from '../src/io/pth.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { ZOO, hashPrefixOf } from '../src/io/zoo.js';
import { OrderedDict, f32, type PyValue } from './helpers/torch-save.js';
import { torchSave } from './helpers/torch-save.js';

const ramp = (n: number, k: number) => Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + k) * 0.5);

/** A squeezenet-like state dict: a few features.* tensors and a classifier, plus something that is dropped for vgg. */
function checkpoint(seed: number): Uint8Array {
  const entries: [string, PyValue][] = [
    ['features.0.weight', f32(ramp(8 * 3 * 3 * 3, seed), [8, 3, 3, 3])],
    ['features.0.bias', f32(ramp(8, seed + 1), [8])],
    ['features.3.squeeze.weight', f32(ramp(4 * 8 * 1 * 1, seed + 2), [4, 8, 1, 1])],
    ['features.3.squeeze.bias', f32(ramp(4, seed + 3), [4])],
    ['features.3.expand3x3.weight', f32(ramp(6 * 4 * 3 * 3, seed + 4), [6, 4, 3, 3])],
    ['classifier.1.weight', f32(ramp(10 * 6, seed + 5), [10, 6, 1, 1])],
    ['classifier.1.bias', f32(ramp(10, seed + 6), [10])],
  ];
  return torchSave(new OrderedDict(entries));
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const GOOD = checkpoint(0);
const OTHER = checkpoint(1); // a valid checkpoint, but not the expected one
const GOOD_SHA = sha(GOOD);
const OTHER_SHA = sha(OTHER);

interface Seen {
  path: string;
  range?: string;
  status: number;
}
const seen: Seen[] = [];
/** Per path: how many requests it got (the "drop" routes drop only the first). */
const hits = new Map<string, number>();
let server: Server;
let base = '';

function send(req: IncomingMessage, res: ServerResponse, body: Uint8Array, o: { ranges: boolean; dropAt?: number }): void {
  const m = o.ranges ? /^bytes=(\d+)-$/.exec(req.headers.range ?? '') : null;
  let start = 0;
  if (m) {
    start = Number(m[1]);
    if (start >= body.length) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
  } else {
    res.writeHead(200, { 'content-length': body.length, 'accept-ranges': o.ranges ? 'bytes' : 'none' });
  }
  const rest = body.subarray(start);
  if (o.dropAt !== undefined) {
    // Send part of the body, then cut the connection.
    res.write(rest.subarray(0, o.dropAt - start), () => setTimeout(() => res.socket?.destroy(), 20));
    return;
  }
  res.end(rest);
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url ?? '/';
  const n = (hits.get(path) ?? 0) + 1;
  hits.set(path, n);
  res.on('finish', () => seen.push({ path, range: req.headers.range, status: res.statusCode }));
  res.on('close', () => {
    if (!res.writableFinished) seen.push({ path, range: req.headers.range, status: res.statusCode });
  });
  const half = Math.floor(GOOD.length / 2);
  if (path.startsWith('/ok/')) return send(req, res, GOOD, { ranges: true });
  if (path.startsWith('/other/')) return send(req, res, OTHER, { ranges: true });
  if (path.startsWith('/drop/')) return send(req, res, GOOD, { ranges: true, dropAt: n === 1 ? half : undefined });
  if (path.startsWith('/norange/')) return send(req, res, GOOD, { ranges: false, dropAt: n === 1 ? half : undefined });
  if (path.startsWith('/redirect/')) {
    res.writeHead(302, { location: `/ok/${path.slice('/redirect/'.length)}` }).end();
    return;
  }
  if (path.startsWith('/loop/')) {
    res.writeHead(301, { location: path }).end();
    return;
  }
  if (path.startsWith('/stall/')) return; // never answers: the client must time out
  if (path.startsWith('/offhost/')) {
    res.writeHead(302, { location: `${base2}/ok/${path.slice('/offhost/'.length)}` }).end();
    return;
  }
  if (path.startsWith('/endless/')) {
    // 200 without a length, then 64 KiB chunks for as long as the client reads.
    res.writeHead(200);
    const chunk = new Uint8Array(65536).fill(7);
    const more = () => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', more);
    };
    more();
    return;
  }
  if (path.startsWith('/huge/')) {
    res.writeHead(200, { 'content-length': 10_000_000_000 });
    res.write(GOOD.subarray(0, 10));
    return;
  }
  if (path.startsWith('/trickle/')) {
    // One byte every 20 ms: a connection that never goes quiet, and never gets anywhere.
    res.writeHead(200, { 'content-length': GOOD.length });
    let i = 0;
    const t = setInterval(() => (res.destroyed || i >= GOOD.length ? clearInterval(t) : res.write(GOOD.subarray(i, ++i))), 20);
    res.on('close', () => clearInterval(t));
    return;
  }
  if (path.startsWith('/slow/')) {
    // Half, then the rest 150 ms later: two fetches started together overlap.
    res.writeHead(200, { 'content-length': GOOD.length });
    res.write(GOOD.subarray(0, half));
    setTimeout(() => res.end(GOOD.subarray(half)), 150);
    return;
  }
  if (path.startsWith('/hang/')) {
    // Half the body, then nothing (the connection stays open).
    res.writeHead(200, { 'content-length': GOOD.length });
    res.write(GOOD.subarray(0, half));
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
}

/** Another host (127.0.0.2) serving the good file: what an off-host redirect would lead to. */
let server2: Server;
let base2 = '';
let hits2 = 0;

beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  server2 = createServer((req, res) => {
    hits2++;
    send(req, res, GOOD, { ranges: true });
  });
  await new Promise<void>((r) => server2.listen(0, '127.0.0.2', r));
  base2 = `http://127.0.0.2:${(server2.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const s of [server, server2]) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

const dirs: string[] = [];
function tempCache(): string {
  const d = mkdtempSync(join(tmpdir(), 'perceptual-weights-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  vi.restoreAllMocks();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The tensors of the generated checkpoint a converted file must hold (readPth is the reference reader). */
function expectConverted(path: string, keep: string[], url: string): void {
  const st = readSafetensors(new Uint8Array(readFileSync(path)), path);
  const want = [...readPth(GOOD).tensors].filter(([k]) => keep.some((p) => k.startsWith(p)));
  expect([...st.tensors.keys()].sort()).toEqual(want.map(([k]) => k).sort());
  for (const [k, t] of want) {
    expect(st.tensors.get(k)!.shape).toEqual(t.shape);
    expect(st.tensors.get(k)!.data).toEqual(t.data);
  }
  expect(st.metadata).toMatchObject({ input: 'rgb01_imagenet_norm', source: url, source_sha256: GOOD_SHA });
  expect(st.metadata.license).toContain('BSD-3-Clause');
}

const files = (d: string) => readdirSync(d).filter((f) => !f.startsWith('.')).sort();

describe('zoo table', () => {
  it('holds the official torchvision files; the hash prefix comes from the file name (torch.hub HASH_REGEX)', () => {
    expect(ZOO.vgg16.url).toBe('https://download.pytorch.org/models/vgg16-397923af.pth');
    expect(ZOO.squeezenet1_1.url).toBe('https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth');
    expect(ZOO.vgg16.hashPrefix).toBe('397923af');
    expect(ZOO.vgg19).toMatchObject({
      url: 'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth',
      hashPrefix: 'dcbb9e9d',
      size: 574_673_361,
      keep: ['features.'],
      arch: 'vgg19',
      input: 'rgb01_imagenet_norm',
    });
    expect(ZOO.vgg19.sha256).toBeUndefined(); // the prefix in the file name is what torch.hub checks too
    expect(ZOO.squeezenet1_1.hashPrefix).toBe('b8a52dc0');
    for (const e of Object.values(ZOO)) if (e.sha256) expect(e.sha256.startsWith(e.hashPrefix)).toBe(true);
    expect(hashPrefixOf('alexnet-owt-7be5be79.pth')).toBe('7be5be79');
    expect(hashPrefixOf('model.pth')).toBeUndefined();
  });

  it('default cache dir: PERCEPTUAL_CACHE_DIR, else XDG_CACHE_HOME, else ~/.cache', () => {
    expect(defaultCacheDir({ PERCEPTUAL_CACHE_DIR: '/x/y', XDG_CACHE_HOME: '/c' })).toBe('/x/y');
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/c' })).toBe(join('/c', 'perceptual-webgpu'));
    expect(defaultCacheDir({ XDG_CACHE_HOME: 'relative' })).toMatch(/\.cache[/\\]perceptual-webgpu$/);
    expect(defaultCacheDir({})).toMatch(/\.cache[/\\]perceptual-webgpu$/);
  });
});

describe('fetchWeights', () => {
  it('downloads, verifies and converts: the safetensors holds the same tensors and the metadata', async () => {
    const cacheDir = tempCache();
    const url = `${base}/ok/squeezenet1_1.pth`;
    const progress: [number, number | undefined][] = [];
    const path = await fetchWeights('squeezenet1_1', { url, cacheDir, sha256: GOOD_SHA, onProgress: (d, t) => progress.push([d, t]) });
    expect(path).toBe(join(cacheDir, 'squeezenet1_1.safetensors'));
    expectConverted(path, ['features.', 'classifier.'], url);
    expect(readSafetensors(new Uint8Array(readFileSync(path))).metadata.arch).toBe('squeezenet1_1');
    expect(progress[0]).toEqual([0, GOOD.length]);
    expect(progress.at(-1)).toEqual([GOOD.length, GOOD.length]);
    expect(files(cacheDir)).toEqual(['squeezenet1_1.safetensors']); // no .part, no .pth

    // Cached: no request the second time; --force downloads again.
    const before = hits.get('/ok/squeezenet1_1.pth');
    expect(await fetchWeights('squeezenet1_1', { url, cacheDir, sha256: GOOD_SHA })).toBe(path);
    expect(hits.get('/ok/squeezenet1_1.pth')).toBe(before);
    await fetchWeights('squeezenet1_1', { url, cacheDir, sha256: GOOD_SHA, force: true });
    expect(hits.get('/ok/squeezenet1_1.pth')).toBe(before! + 1);
  });

  it('vgg16 keeps only features.*; a hash prefix is accepted; keepPth keeps and reuses the verified .pth', async () => {
    const cacheDir = tempCache();
    const url = `${base}/ok/vgg.pth`;
    const path = await fetchWeights('vgg16', { url, cacheDir, sha256: GOOD_SHA.slice(0, 8), keepPth: true });
    expectConverted(path, ['features.'], url);
    expect(files(cacheDir)).toEqual(['vgg16-397923af.pth', 'vgg16.safetensors']);
    expect(new Uint8Array(readFileSync(join(cacheDir, 'vgg16-397923af.pth')))).toEqual(GOOD);
    rmSync(path);
    const n = hits.get('/ok/vgg.pth');
    await fetchWeights('vgg16', { url, cacheDir, sha256: GOOD_SHA });
    expect(hits.get('/ok/vgg.pth')).toBe(n); // converted from the kept .pth, no download
    expectConverted(path, ['features.'], url);
  });

  it('vgg19 converts like vgg16: features.* only, arch vgg19, the cache under its own name', async () => {
    const cacheDir = tempCache();
    const url = `${base}/ok/vgg19.pth`;
    const path = await fetchWeights('vgg19', { url, cacheDir, sha256: GOOD_SHA });
    expect(path).toBe(join(cacheDir, 'vgg19.safetensors'));
    expectConverted(path, ['features.'], url);
    expect(readSafetensors(new Uint8Array(readFileSync(path))).metadata.arch).toBe('vgg19');
    expect(files(cacheDir)).toEqual(['vgg19.safetensors']);
    // Without --sha256 the table's prefix (dcbb9e9d) is what the download must match.
    const err = await fetchWeights('vgg19', { url, cacheDir, force: true }).catch((e) => e);
    expect(err).toBeInstanceOf(ChecksumError);
    expect(err.message).toMatch(/expected a sha256 starting with dcbb9e9d/);
    expect(files(cacheDir)).toEqual(['vgg19.safetensors']);
  });

  it('an interrupted download leaves a .part; the next call resumes it with a Range request', async () => {
    const cacheDir = tempCache();
    const url = `${base}/drop/squeezenet1_1.pth`;
    const part = join(cacheDir, 'squeezenet1_1-b8a52dc0.pth.part');
    const err = await fetchWeights('squeezenet1_1', { url, cacheDir, sha256: GOOD_SHA }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/interrupted after \d+ of \d+ bytes \(the connection was closed\)/);
    expect(err.message).toContain(url);
    expect(err.message).toContain('run again to resume');
    const half = Math.floor(GOOD.length / 2);
    expect(statSync(part).size).toBe(half);
    expect(existsSync(join(cacheDir, 'squeezenet1_1.safetensors'))).toBe(false);

    const logs: string[] = [];
    const progress: number[] = [];
    const path = await fetchWeights('squeezenet1_1', { url, cacheDir, sha256: GOOD_SHA, log: (m) => logs.push(m), onProgress: (d) => progress.push(d) });
    const second = seen.filter((s) => s.path === '/drop/squeezenet1_1.pth').at(-1)!;
    expect(second.range).toBe(`bytes=${half}-`);
    expect(second.status).toBe(206);
    expect(progress[0]).toBe(half);
    expect(logs.join('\n')).toContain(`resuming at byte ${half}`);
    expectConverted(path, ['features.', 'classifier.'], url);
    expect(existsSync(part)).toBe(false);
  });

  it('a server that ignores Range (200 to a range request) gets a full download that ends right', async () => {
    const cacheDir = tempCache();
    const url = `${base}/norange/squeezenet1_1.pth`;
    await expect(fetchWeights('squeezenet1_1', { url, cacheDir, sha256: GOOD_SHA })).rejects.toThrow(/interrupted/);
    const logs: string[] = [];
    const path = await fetchWeights('squeezenet1_1', { url, cacheDir, sha256: GOOD_SHA, log: (m) => logs.push(m) });
    const second = seen.filter((s) => s.path === '/norange/squeezenet1_1.pth').at(-1)!;
    expect(second.range).toMatch(/^bytes=\d+-$/);
    expect(second.status).toBe(200);
    expect(logs.join('\n')).toContain('server ignored the resume request');
    expectConverted(path, ['features.', 'classifier.'], url);
  });

  it('a complete .part (416 on resume) is used as is', async () => {
    const cacheDir = tempCache();
    writeFileSync(join(cacheDir, 'squeezenet1_1-b8a52dc0.pth.part'), GOOD);
    const url = `${base}/ok/complete.pth`;
    const path = await fetchWeights('squeezenet1_1', { url, cacheDir, sha256: GOOD_SHA });
    expect(seen.filter((s) => s.path === '/ok/complete.pth').map((s) => s.status)).toEqual([416]);
    expectConverted(path, ['features.', 'classifier.'], url);
  });

  it('checksum mismatch: names expected and found, deletes the .part, writes nothing, keeps a good file untouched', async () => {
    const cacheDir = tempCache();
    const url = `${base}/other/squeezenet1_1.pth`;
    const err = await fetchWeights('squeezenet1_1', { url, cacheDir, sha256: GOOD_SHA }).catch((e) => e);
    expect(err).toBeInstanceOf(ChecksumError);
    expect(err.message).toContain(`expected sha256 ${GOOD_SHA}`);
    expect(err.message).toContain(`found ${OTHER_SHA}`);
    expect(err.message).toContain(url);
    expect(files(cacheDir)).toEqual([]);

    // The table's own check (prefix from the file name): the message names the prefix.
    const err2 = await fetchWeights('squeezenet1_1', { url, cacheDir }).catch((e) => e);
    expect(err2).toBeInstanceOf(ChecksumError);
    expect(err2.message).toMatch(/expected sha256 b8a52dc0/);
    expect(err2.message).toContain(`found ${OTHER_SHA}`);

    // A previous good file survives a forced re-download that fails the check.
    const good = await fetchWeights('squeezenet1_1', { url: `${base}/ok/sq.pth`, cacheDir, sha256: GOOD_SHA });
    const bytes = readFileSync(good);
    const mtime = statSync(good).mtimeMs;
    await expect(fetchWeights('squeezenet1_1', { url, cacheDir, sha256: GOOD_SHA, force: true })).rejects.toThrow(ChecksumError);
    expect(readFileSync(good)).toEqual(bytes);
    expect(statSync(good).mtimeMs).toBe(mtime);
    expect(files(cacheDir)).toEqual(['squeezenet1_1.safetensors']);
  });

  it('HTTP 404 names the status and the URL; redirects are followed, and limited', async () => {
    const cacheDir = tempCache();
    const url = `${base}/missing/squeezenet1_1.pth`;
    const err = await fetchWeights('squeezenet1_1', { url, cacheDir, sha256: GOOD_SHA }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.status).toBe(404);
    expect(err.message).toContain('HTTP 404');
    expect(err.message).toContain(url);
    expect(files(cacheDir)).toEqual([]);

    const path = await fetchWeights('squeezenet1_1', { url: `${base}/redirect/sq.pth`, cacheDir, sha256: GOOD_SHA });
    expectConverted(path, ['features.', 'classifier.'], `${base}/redirect/sq.pth`);
    await expect(fetchWeights('squeezenet1_1', { url: `${base}/loop/x.pth`, cacheDir, sha256: GOOD_SHA, force: true, maxRedirects: 3 })).rejects.toThrow(
      /too many redirects \(more than 3\)/,
    );
  });

  it('timeouts: no bytes at all, or a stall mid-body, each say so; an abort keeps the .part for a resume', async () => {
    const cacheDir = tempCache();
    const stall = `${base}/stall/squeezenet1_1.pth`;
    await expect(fetchWeights('squeezenet1_1', { url: stall, cacheDir, sha256: GOOD_SHA, timeoutMs: 200 })).rejects.toThrow(
      new RegExp(`timed out: no response from ${stall.replace(/[.]/g, '\\.')} in 0\\.2 s`),
    );
    const half = Math.floor(GOOD.length / 2);
    const hang = `${base}/hang/squeezenet1_1.pth`;
    const part = join(cacheDir, 'squeezenet1_1-b8a52dc0.pth.part');
    await expect(fetchWeights('squeezenet1_1', { url: hang, cacheDir, sha256: GOOD_SHA, timeoutMs: 200 })).rejects.toThrow(
      `stalled after ${half} of ${GOOD.length} bytes: no data for 0.2 s`,
    );
    expect(statSync(part).size).toBe(half);
    rmSync(part);

    const ac = new AbortController();
    const onProgress = (done: number) => void (done >= half && ac.abort());
    const err = await fetchWeights('squeezenet1_1', { url: hang, cacheDir, sha256: GOOD_SHA, signal: ac.signal, onProgress }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toContain(`aborted after ${half} of ${GOOD.length} bytes`);
    expect(statSync(part).size).toBe(half);
    // ... and the next call (here from a mirror with Range support) finishes it.
    const path = await fetchWeights('squeezenet1_1', { url: `${base}/ok/resume.pth`, cacheDir, sha256: GOOD_SHA });
    expect(seen.filter((s) => s.path === '/ok/resume.pth').map((s) => [s.range, s.status])).toEqual([[`bytes=${half}-`, 206]]);
    expectConverted(path, ['features.', 'classifier.'], `${base}/ok/resume.pth`);

    await expect(fetchWeights('squeezenet1_1', { url: stall, cacheDir, force: true, signal: AbortSignal.abort() })).rejects.toThrow();
    await expect(fetchWeights('nope', { cacheDir })).rejects.toThrow(/unknown weights 'nope' \(known: vgg16, vgg19, squeezenet1_1\)/);
    await expect(fetchWeights('vgg16', { cacheDir, sha256: 'xyz' })).rejects.toThrow(/8 to 64 hex digits/);
  });
});

describe('weights fetch hardening (#14 item 9)', () => {
  const PART = 'squeezenet1_1-b8a52dc0.pth.part';

  it('a symbolic link (or a second hard link) planted as the .part is refused; its target is untouched; the CLI exits 1', async () => {
    const cacheDir = tempCache();
    const victim = join(tempCache(), 'precious.txt');
    writeFileSync(victim, 'precious');
    symlinkSync(victim, join(cacheDir, PART));
    const url = `${base}/ok/link.pth`;
    const err = await fetchWeights('squeezenet1_1', { url, cacheDir, sha256: GOOD_SHA }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toBe(`${join(cacheDir, PART)} is a symbolic link: a partial download is never written through a link (remove it and run again)`);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(lstatSync(join(cacheDir, PART)).isSymbolicLink()).toBe(true);
    expect(existsSync(join(cacheDir, 'squeezenet1_1.safetensors'))).toBe(false);
    const r = await cli(['fetch', 'squeezenet1_1', '--url', url, '--cache-dir', cacheDir, '--sha256', GOOD_SHA, '--quiet']);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toContain(`${join(cacheDir, PART)} is a symbolic link`);
    expect(readFileSync(victim, 'utf8')).toBe('precious');

    const other = tempCache();
    const victim2 = join(tempCache(), 'precious2.txt');
    writeFileSync(victim2, 'precious too');
    linkSync(victim2, join(other, PART));
    await expect(fetchWeights('squeezenet1_1', { url, cacheDir: other, sha256: GOOD_SHA })).rejects.toThrow(
      `${join(other, PART)} is a file with 2 links: a partial download is only written to a file of its own (remove it and run again)`,
    );
    expect(readFileSync(victim2, 'utf8')).toBe('precious too');
  });

  it('redirects: https only to https, http only on the same host, else refused naming both (and nothing is written)', async () => {
    expect(redirectAllowed('https://a.example/x', 'https://cdn.example/y')).toBe(true);
    expect(redirectAllowed('https://a.example/x', 'http://a.example/y')).toBe(false);
    expect(redirectAllowed('http://127.0.0.1:8000/x', 'http://127.0.0.1:8000/y')).toBe(true);
    expect(redirectAllowed('http://127.0.0.1:8000/x', 'https://127.0.0.1/y')).toBe(true);
    expect(redirectAllowed('http://127.0.0.1:8000/x', 'http://127.0.0.2:8000/y')).toBe(false);
    expect(redirectAllowed('http://127.0.0.1:8000/x', 'http://127.0.0.1:9000/y')).toBe(false);
    expect(redirectAllowed('https://a.example/x', 'file:///etc/passwd')).toBe(false);

    const cacheDir = tempCache();
    const url = `${base}/offhost/sq.pth`;
    const before = hits2;
    const err = await fetchWeights('squeezenet1_1', { url, cacheDir, sha256: GOOD_SHA }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toBe(
      `refusing the redirect from ${url} to ${base2}/ok/sq.pth: a download from http://${new URL(base).host} only follows redirects on the same host; give that address as the URL (--url) to download from there`,
    );
    expect(hits2).toBe(before); // the other host was never asked
    expect(files(cacheDir)).toEqual([]);
    const r = await cli(['fetch', 'squeezenet1_1', '--url', url, '--cache-dir', cacheDir, '--sha256', GOOD_SHA, '--quiet']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('refusing the redirect');
    // Named as the URL, that host is fine.
    const path = await fetchWeights('squeezenet1_1', { url: `${base2}/ok/sq.pth`, cacheDir, sha256: GOOD_SHA });
    expectConverted(path, ['features.', 'classifier.'], `${base2}/ok/sq.pth`);
  });

  it('a body larger than the table says (plus a margin) is stopped and deleted; an announced one is refused up front', async () => {
    const cap = maxDownloadBytes(ZOO.squeezenet1_1)!;
    expect(cap).toBe(Math.ceil(4_958_839 * 1.05) + (1 << 20));
    const cacheDir = tempCache();
    const url = `${base}/endless/sq.pth`;
    let most = 0;
    const err = await fetchWeights('squeezenet1_1', { url, cacheDir, sha256: GOOD_SHA, onProgress: (d) => void (most = d) }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toBe(`download of ${url} went past ${cap} bytes, more than this file can have: stopped, and the partial file deleted`);
    expect(most).toBeLessThanOrEqual(cap);
    expect(files(cacheDir)).toEqual([]);

    const huge = `${base}/huge/sq.pth`;
    await expect(fetchWeights('squeezenet1_1', { url: huge, cacheDir, sha256: GOOD_SHA })).rejects.toThrow(
      `${huge} announces 10000000000 bytes, more than the ${cap} this file can have: nothing was downloaded`,
    );
    expect(files(cacheDir)).toEqual([]);
  });

  it('a trickle (one byte every 20 ms) is a stall: stopped after timeoutMs, the .part kept for a resume', async () => {
    const cacheDir = tempCache();
    const url = `${base}/trickle/sq.pth`;
    const err = await fetchWeights('squeezenet1_1', { url, cacheDir, sha256: GOOD_SHA, timeoutMs: 300 }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(
      new RegExp(`^download of ${url.replace(/[.]/g, '\\.')} stalled after (\\d+) of ${GOOD.length} bytes: only \\d+ bytes in the last 0\\.3 s \\(at least 65536 wanted\\); the partial file .* is kept: run again to resume$`),
    );
    const got = Number(/after (\d+) of/.exec(err.message)![1]);
    expect(got).toBeLessThan(100);
    expect(statSync(join(cacheDir, PART)).size).toBe(got);
  });

  it('two fetches at once: one downloads, the other waits for it and uses its file (was: both "checksum mismatch")', async () => {
    const cacheDir = tempCache();
    const url = `${base}/slow/twice.pth`;
    // Either may take the lock first (both race for it): exactly one of them waits.
    const logs: string[][] = [[], []];
    const [a, b] = await Promise.all(
      logs.map((l) => fetchWeights('squeezenet1_1', { url, cacheDir, sha256: GOOD_SHA, log: (m) => l.push(m) })),
    );
    expect(a).toBe(b);
    expect(hits.get('/slow/twice.pth')).toBe(1);
    const waiting = `waiting for another fetch of this network (pid ${process.pid})`;
    expect(logs.map((l) => l.some((m) => m.includes(waiting))).sort()).toEqual([false, true]);
    expectConverted(a, ['features.', 'classifier.'], url);
    expect(files(cacheDir)).toEqual(['squeezenet1_1.safetensors']); // no .part, no .lock

    // A lock left by a process that is gone is taken over.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(join(cacheDir, 'squeezenet1_1.lock'), JSON.stringify({ pid: dead, host: hostname(), since: '2020-01-01T00:00:00Z' }));
    const logs2: string[] = [];
    await fetchWeights('squeezenet1_1', { url: `${base}/ok/relock.pth`, cacheDir, sha256: GOOD_SHA, force: true, log: (m) => logs2.push(m) });
    expect(logs2.join('\n')).toContain(`its holder (pid ${dead} on ${hostname()}) is gone`);
    expect(files(cacheDir)).toEqual(['squeezenet1_1.safetensors']);
  });

  it('a cached .safetensors that is empty, garbage, another network or from another file is not trusted: fetched again', async () => {
    const cacheDir = tempCache();
    const out = join(cacheDir, 'squeezenet1_1.safetensors');
    const url = `${base}/ok/recache.pth`;
    const other = writeSafetensors({ w: { data: new Float32Array(2), shape: [2] } }, { arch: 'squeezenet1_1', source_sha256: OTHER_SHA });
    const vgg = writeSafetensors({ w: { data: new Float32Array(2), shape: [2] } }, { arch: 'vgg16', source_sha256: GOOD_SHA });
    const cases: [Uint8Array, string][] = [
      [new Uint8Array(0), '0 bytes is too short for a safetensors file'],
      [new TextEncoder().encode('<html>not found</html>'), 'its header length'],
      [other, `it was converted from a file with sha256 ${OTHER_SHA}, not the expected ${GOOD_SHA}`],
      [vgg, 'its metadata names network "vgg16", not squeezenet1_1'],
    ];
    for (const [bytes, why] of cases) {
      writeFileSync(out, bytes);
      const n = hits.get('/ok/recache.pth') ?? 0;
      const logs: string[] = [];
      expect(await fetchWeights('squeezenet1_1', { url, cacheDir, sha256: GOOD_SHA, log: (m) => logs.push(m) })).toBe(out);
      expect(hits.get('/ok/recache.pth'), why).toBe(n + 1);
      expect(logs.join('\n')).toContain(`not using the cached ${out}: ${why}`);
      expectConverted(out, ['features.', 'classifier.'], url);
    }
    // The good file is trusted: no request.
    const n = hits.get('/ok/recache.pth');
    await fetchWeights('squeezenet1_1', { url, cacheDir, sha256: GOOD_SHA });
    expect(hits.get('/ok/recache.pth')).toBe(n);
    // The CLI on a garbage cache: exit 0, the path, a valid file.
    writeFileSync(out, 'garbage');
    const r = await cli(['fetch', 'squeezenet1_1', '--url', url, '--cache-dir', cacheDir, '--sha256', GOOD_SHA, '--quiet']);
    expect(r.code).toBe(0);
    expect(r.out).toBe(`${out}\n`);
    expectConverted(out, ['features.', 'classifier.'], url);
  });
});

/** Runs the CLI command in-process, capturing what it prints. */
async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void (out += `${a.join(' ')}\n`));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void (err += `${a.join(' ')}\n`));
  vi.spyOn(process.stderr, 'write').mockImplementation(((s: string | Uint8Array) => {
    err += String(s);
    return true;
  }) as typeof process.stderr.write);
  try {
    const code = await weights(argv);
    return { code, out, err };
  } finally {
    vi.restoreAllMocks();
  }
}

describe('perceptual weights (CLI command, in-process)', () => {
  it('fetch prints the path on stdout and the progress on stderr; errors exit 1 with the message', async () => {
    const cacheDir = tempCache();
    const url = `${base}/ok/cli.pth`;
    const r = await cli(['fetch', 'squeezenet1_1', '--url', url, '--cache-dir', cacheDir, '--sha256', GOOD_SHA]);
    expect(r.code).toBe(0);
    expect(r.out).toBe(`${join(cacheDir, 'squeezenet1_1.safetensors')}\n`);
    expect(r.err).toContain('squeezenet1_1-b8a52dc0.pth');
    expect(r.err).toMatch(/ 0% 0 B\/4\.\d kB/); // the first line (not a TTY: occasional plain lines)
    expect(r.err).toMatch(/squeezenet1_1-b8a52dc0\.pth 4\.\d kB in 0:00 \(.* [kM]B\/s\)\n/); // the summary
    expectConverted(r.out.trim(), ['features.', 'classifier.'], url);

    const bad = await cli(['fetch', 'squeezenet1_1', '--url', `${base}/other/cli.pth`, '--cache-dir', cacheDir, '--force', '--quiet']);
    expect(bad.code).toBe(1);
    expect(bad.out).toBe('');
    expect(bad.err).toContain('checksum mismatch');
    expect(bad.err).toContain(`found ${OTHER_SHA}`);

    const missing = await cli(['fetch', 'vgg16', '--url', `${base}/missing/v.pth`, '--cache-dir', cacheDir]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain(`HTTP 404 Not Found for ${base}/missing/v.pth`);
  });

  it('usage errors exit 2; --help and list exit 0', async () => {
    expect((await cli(['fetch', 'resnet50'])).err).toMatch(/unknown network 'resnet50' \(known: vgg16, vgg19, squeezenet1_1\)/);
    expect((await cli(['fetch', 'resnet50'])).code).toBe(2);
    expect((await cli(['frob'])).code).toBe(2);
    expect((await cli(['fetch'])).code).toBe(2);
    expect((await cli(['fetch', 'vgg16', '--bogus'])).code).toBe(2);
    expect((await cli(['fetch', 'vgg16', '--sha256', 'zz'])).code).toBe(2);
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('usage: perceptual weights fetch <vgg16|vgg19|squeezenet1_1>');
    const list = await cli(['list', '--cache-dir', tempCache()]);
    expect(list.code).toBe(0);
    expect(list.out).toContain(ZOO.vgg16.url);
    expect(list.out).toContain('not cached');
  });
});

describe('progress line', () => {
  it('formats sizes, rates and durations', () => {
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1500)).toBe('1.5 kB');
    expect(formatBytes(553_433_881)).toBe('553.4 MB');
    expect(formatBytes(999_990)).toBe('1.0 MB');
    expect(formatRate(2_500_000, 'bytes')).toBe('2.5 MB/s');
    expect(formatRate(undefined, 'bytes')).toBe('-- MB/s');
    expect(formatRate(12.34, 'steps')).toBe('12.3 it/s');
    expect(formatRate(0.5, 'steps')).toBe('2.0 s/it');
    expect(formatDuration(0)).toBe('0:00');
    expect(formatDuration(83)).toBe('1:23');
    expect(formatDuration(3723)).toBe('1:02:03');
    expect(formatDuration(undefined)).toBe('--:--');
    expect(formatDuration(Infinity)).toBe('--:--');
    expect(formatProgress({ label: 'f', done: 25, total: 100, unit: 'steps', rate: 5, elapsedMs: 0 }, 10)).toBe(
      'f [==>       ]  25% 25/100 5.0 it/s ETA 0:15',
    );
  });

  it('rate and ETA from an injected clock; plain occasional lines off a TTY, \\r redraws on a TTY', () => {
    let t = 0;
    let text = '';
    const stream = { write: (s: string) => void (text += s), isTTY: false };
    const p = new Progress({ label: 'w.pth', unit: 'bytes', total: 10_000_000, stream, now: () => t, intervalMs: 1000 });
    p.update(0);
    for (let i = 1; i <= 4; i++) {
      t = i * 500;
      p.update(i * 1_000_000); // 2 MB/s
    }
    expect(p.rate()).toBeCloseTo(2_000_000, 6);
    // Lines at t=0, 1000, 2000 only (intervalMs), each a whole line.
    expect(text.split('\n').filter(Boolean)).toEqual([
      'w.pth   0% 0 B/10.0 MB -- MB/s ETA --:--',
      'w.pth  20% 2.0 MB/10.0 MB 2.0 MB/s ETA 0:04',
      'w.pth  40% 4.0 MB/10.0 MB 2.0 MB/s ETA 0:03',
    ]);
    text = '';
    p.finish();
    expect(text).toBe('w.pth 4.0 MB in 0:02 (2.0 MB/s)\n');

    // A resumed download: the rate counts only bytes moved since the start of the window.
    t = 0;
    text = '';
    const tty = { write: (s: string) => void (text += s), isTTY: true, columns: 100 };
    const q = new Progress({ label: 'r', unit: 'bytes', total: 2_000_000, stream: tty, now: () => t, windowMs: 1000 });
    q.update(1_000_000);
    t = 1000;
    q.update(1_500_000); // 0.5 MB/s
    expect(q.rate()).toBeCloseTo(500_000, 6);
    expect(text.startsWith('\r')).toBe(true);
    expect(text).not.toContain('\n');
    expect(text).toContain('r [');
    expect(text).toContain(' 75% 1.5 MB/2.0 MB 500.0 kB/s ETA 0:01');
    t = 3000;
    q.update(1_600_000); // window 1 s: the oldest sample kept is t=1000 -> 0.1 MB / 2 s
    expect(q.rate()).toBeCloseTo(50_000, 6);
    q.finish('done');
    expect(text.endsWith('\n')).toBe(true);
  });
});
