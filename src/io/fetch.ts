// Downloads the official pretrained loss networks (src/io/zoo.ts) into a local cache, verifies them and converts them
// to safetensors. Node only (node:http, node:https, node:fs); the browser build loads the converted files instead.
//
// Download: streamed to `<cache>/<file>.part`. A dropped connection leaves the .part; the next run asks for the rest
// with `Range: bytes=<size>-` and appends on 206 Partial Content, or starts over when the server ignores Range (200).
// A stall with no data for `timeoutMs` is an error; HTTP errors name the status and the URL; redirects are followed
// (at most `maxRedirects`). Integrity: the sha256 of the complete file must start with the prefix in torchvision's
// file name (exactly torch.hub's check_hash test) and equal the full sha256 where the table knows it; on a mismatch
// the .part is deleted and nothing else is touched. Conversion keeps the entry's `keep` prefixes and writes
// `<cache>/<name>.safetensors` atomically (writeFileAtomic), with provenance in its metadata.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { readFileBytes, writeFileAtomic } from './files.js';
import { readPth } from './pth.js';
import { WeightFileError, writeSafetensors, type TensorToWrite } from './safetensors.js';
import { zooEntry, type ZooEntry } from './zoo.js';

/** A download that failed: HTTP error status, network error, timeout, interruption or abort. */
export class DownloadError extends Error {
  override name = 'DownloadError';
  constructor(
    message: string,
    readonly url: string,
    /** The HTTP status, for HTTP errors. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The downloaded file is not the expected one. */
export class ChecksumError extends Error {
  override name = 'ChecksumError';
  constructor(
    message: string,
    readonly expected: string,
    readonly found: string,
  ) {
    super(message);
  }
}

/** `PERCEPTUAL_CACHE_DIR`, else `$XDG_CACHE_HOME/perceptual-webgpu` (when absolute), else `~/.cache/perceptual-webgpu`. */
export function defaultCacheDir(env: Record<string, string | undefined> = process.env): string {
  if (env.PERCEPTUAL_CACHE_DIR) return resolve(env.PERCEPTUAL_CACHE_DIR);
  const xdg = env.XDG_CACHE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache'), 'perceptual-webgpu');
}

export interface DownloadOptions {
  /** Called with bytes done (including a resumed part) and the total when known. */
  onProgress?: (done: number, total: number | undefined) => void;
  /** Aborting keeps the .part for a later resume. */
  signal?: AbortSignal;
  /** Give up when no data arrives for this long (default 30 000 ms). */
  timeoutMs?: number;
  /** Redirects followed at most (default 5). */
  maxRedirects?: number;
  /** Notices (resuming, restarting), one line each. */
  log?: (message: string) => void;
}

export interface DownloadResult {
  /** Size of the complete file. */
  bytes: number;
  /** Bytes already present in the .part and kept (0 for a full download). */
  resumedFrom: number;
}

interface Response {
  res: http.IncomingMessage;
  url: string;
  /** Why the request ended early, when it did: set by the timeout. */
  timedOut: () => boolean;
}

function describeUrl(url: string, final: string): string {
  return final === url ? url : `${url} (redirected to ${final})`;
}

function get(url: string, headers: Record<string, string>, o: DownloadOptions, from = url, hops = 0): Promise<Response> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return Promise.reject(new DownloadError(`invalid URL ${JSON.stringify(url)}`, url));
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    return Promise.reject(new DownloadError(`unsupported URL ${url}: only http: and https: are supported`, url));
  }
  const timeoutMs = o.timeoutMs ?? 30_000;
  const maxRedirects = o.maxRedirects ?? 5;
  return new Promise<Response>((resolveP, reject) => {
    let timedOut = false;
    const req = (u.protocol === 'https:' ? https : http).get(
      u,
      { headers: { 'user-agent': 'perceptual-webgpu', 'accept-encoding': 'identity', ...headers }, signal: o.signal },
      (res) => {
        const status = res.statusCode ?? 0;
        const location = res.headers.location;
        if ([301, 302, 303, 307, 308].includes(status) && location) {
          res.resume();
          if (hops >= maxRedirects) {
            reject(new DownloadError(`too many redirects (more than ${maxRedirects}) for ${from}, last to ${location}`, from, status));
          } else {
            resolveP(get(new URL(location, u).href, headers, o, from, hops + 1));
          }
          return;
        }
        resolveP({ res, url: u.href, timedOut: () => timedOut });
      },
    );
    req.setTimeout(timeoutMs, () => {
      timedOut = true;
      req.destroy();
    });
    req.on('error', (e) => {
      if (o.signal?.aborted) reject(new DownloadError(`download of ${describeUrl(from, u.href)} aborted`, from, undefined, { cause: e }));
      else if (timedOut) {
        reject(new DownloadError(`timed out: no bytes received from ${describeUrl(from, u.href)} in ${timeoutMs / 1000} s`, from, undefined, { cause: e }));
      } else reject(new DownloadError(`cannot download ${describeUrl(from, u.href)}: ${(e as Error).message}`, from, undefined, { cause: e }));
    });
  });
}

function parseContentRange(h: string | undefined): { start?: number; end?: number; total?: number } | undefined {
  const m = h && /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)$/i.exec(h.trim());
  if (!m) return undefined;
  const num = (s: string | undefined) => (s === undefined || s === '*' ? undefined : Number(s));
  return { start: num(m[1]), end: num(m[2]), total: num(m[3]) };
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

/**
 * Downloads `url` into `part`, resuming from the bytes already there (HTTP Range) and starting over when the server
 * does not support ranges. Throws a DownloadError (the .part is kept) when the transfer fails part way.
 */
export async function downloadFile(url: string, part: string, o: DownloadOptions = {}): Promise<DownloadResult> {
  o.signal?.throwIfAborted();
  const have = (await sizeOf(part)) ?? 0;
  const { res, url: final, timedOut } = await get(url, have > 0 ? { range: `bytes=${have}-` } : {}, o);
  const where = describeUrl(url, final);
  const status = res.statusCode ?? 0;
  const length = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : undefined;
  let start = 0;
  let total: number | undefined;
  if (status === 206 && have > 0) {
    const cr = parseContentRange(res.headers['content-range']);
    if (!cr || cr.start !== have) {
      res.destroy();
      o.log?.(`server answered the resume request with Content-Range ${res.headers['content-range'] ?? '(none)'}: downloading from the start`);
      await rm(part, { force: true });
      return downloadFile(url, part, o);
    }
    start = have;
    total = cr.total ?? (length !== undefined ? have + length : undefined);
  } else if (status === 416 && have > 0) {
    res.resume();
    const cr = parseContentRange(res.headers['content-range']);
    if (cr?.total === have) return { bytes: have, resumedFrom: have }; // the .part was already complete
    o.log?.(`server refused to resume at byte ${have} (HTTP 416): downloading from the start`);
    await rm(part, { force: true });
    return downloadFile(url, part, o);
  } else if (status === 200) {
    if (have > 0) o.log?.(`server ignored the resume request (HTTP 200 instead of 206): downloading from the start`);
    total = length;
  } else {
    res.resume();
    throw new DownloadError(`HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''} for ${where}`, url, status);
  }
  if (start > 0) o.log?.(`resuming at byte ${start}${total !== undefined ? ` of ${total}` : ''}`);

  let done = start;
  const fh = await open(part, start > 0 ? 'a' : 'w');
  try {
    o.onProgress?.(done, total);
    for await (const chunk of res as AsyncIterable<Buffer>) {
      await fh.write(chunk);
      done += chunk.length;
      o.onProgress?.(done, total);
    }
  } catch (e) {
    const got = `after ${done}${total !== undefined ? ` of ${total}` : ''} bytes`;
    const kept = `the partial file ${part} is kept: run again to resume`;
    if (o.signal?.aborted) throw new DownloadError(`download of ${where} aborted ${got}; ${kept}`, url, undefined, { cause: e });
    if (timedOut()) throw new DownloadError(`download of ${where} stalled ${got}: no data for ${(o.timeoutMs ?? 30_000) / 1000} s; ${kept}`, url, undefined, { cause: e });
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ECONNRESET' || err.message === 'aborted' ? 'the connection was closed' : err.message;
    throw new DownloadError(`download of ${where} interrupted ${got} (${why}); ${kept}`, url, undefined, { cause: e });
  } finally {
    await fh.close();
  }
  if (total !== undefined && done !== total) {
    throw new DownloadError(`download of ${where} ended after ${done} of ${total} bytes; the partial file ${part} is kept: run again to resume`, url);
  }
  return { bytes: done, resumedFrom: start };
}

/** Hex sha256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export interface ExpectedHash {
  /** Lowercase hex prefix the sha256 must start with (torch.hub's check). */
  prefix: string;
  /** Full lowercase hex sha256, when known. */
  full?: string;
}

/** The hash a zoo file must have: the table's, or `override` (full 64 hex digits, or a prefix of at least 8). */
export function expectedHash(entry: ZooEntry, override?: string): ExpectedHash {
  if (override === undefined) return { prefix: entry.hashPrefix, full: entry.sha256 };
  const h = override.trim().toLowerCase();
  if (!/^[0-9a-f]{8,64}$/.test(h)) throw new Error(`expected sha256 ${JSON.stringify(override)} must be 8 to 64 hex digits`);
  return h.length === 64 ? { prefix: h.slice(0, 8), full: h } : { prefix: h };
}

export function hashMatches(expected: ExpectedHash, digest: string): boolean {
  return digest.startsWith(expected.prefix) && (expected.full === undefined || digest === expected.full);
}

/** The state dict of a zoo checkpoint, reduced to the kept tensors, as safetensors bytes with provenance metadata. */
export function pthToSafetensors(bytes: Uint8Array, entry: ZooEntry, source: { url: string; sha256: string; file?: string }): Uint8Array {
  const file = source.file ?? entry.file;
  const { tensors } = readPth(bytes, file);
  const kept = new Map<string, TensorToWrite>();
  for (const [name, t] of tensors) if (entry.keep.some((p) => name.startsWith(p))) kept.set(name, { data: t.data, shape: t.shape });
  if (kept.size === 0) {
    const names = [...tensors.keys()];
    throw new WeightFileError(
      `${file}: no ${entry.keep.map((p) => `${p}*`).join(' or ')} tensors (found ${names.slice(0, 6).join(', ') || 'none'}${names.length > 6 ? ', ...' : ''}): not a ${entry.arch} checkpoint`,
    );
  }
  return writeSafetensors(kept, {
    arch: entry.arch,
    input: entry.input,
    source: source.url,
    source_sha256: source.sha256,
    license: entry.license,
  });
}

export interface FetchOptions extends DownloadOptions {
  /** Default: `defaultCacheDir()`. */
  cacheDir?: string;
  /** Download from here instead of the official address (a mirror); the file must still pass the hash check. */
  url?: string;
  /** Download and convert again even when the .safetensors exists. */
  force?: boolean;
  /** Keep the verified .pth next to the .safetensors (under its official file name); a kept .pth is reused. */
  keepPth?: boolean;
  /** Expected sha256 of the file, replacing the table's: 64 hex digits, or a prefix of at least 8. */
  sha256?: string;
}

function checksumMessage(where: string, e: ExpectedHash, digest: string): string {
  const want = e.full ? `sha256 ${e.full}` : `a sha256 starting with ${e.prefix} (the hash prefix in the file name, as torch.hub checks)`;
  return `checksum mismatch for ${where}: expected ${want}, found ${digest}; the download was deleted`;
}

/**
 * Makes sure `<cacheDir>/<name>.safetensors` exists (downloading, verifying and converting the official checkpoint if
 * needed) and returns its path. Safe to interrupt: an unfinished download resumes on the next call.
 */
export async function fetchWeights(name: string, o: FetchOptions = {}): Promise<string> {
  const entry = zooEntry(name);
  const expected = expectedHash(entry, o.sha256);
  const dir = o.cacheDir ?? defaultCacheDir();
  const out = join(dir, `${entry.name}.safetensors`);
  if (!o.force && (await sizeOf(out)) !== undefined) return out;
  await mkdir(dir, { recursive: true });
  const url = o.url ?? entry.url;
  const pth = join(dir, entry.file);
  const part = `${pth}.part`;
  if (o.force) await rm(part, { force: true });

  let file: string | undefined;
  let digest = '';
  if (!o.force && (await sizeOf(pth)) !== undefined) {
    digest = await sha256File(pth);
    if (hashMatches(expected, digest)) file = pth;
    else o.log?.(`ignoring ${pth}: its sha256 ${digest} is not the expected one`);
  }
  if (!file) {
    await downloadFile(url, part, o);
    digest = await sha256File(part);
    if (!hashMatches(expected, digest)) {
      await rm(part, { force: true });
      throw new ChecksumError(checksumMessage(url, expected, digest), expected.full ?? expected.prefix, digest);
    }
    file = part;
  }
  const st = pthToSafetensors(await readFileBytes(file), entry, { url, sha256: digest, file: file === part ? entry.file : file });
  await writeFileAtomic(out, st);
  if (file === part) {
    if (o.keepPth) await rename(part, pth);
    else await rm(part, { force: true });
  }
  return out;
}
