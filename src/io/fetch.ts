// Downloads the official pretrained loss networks (src/io/zoo.ts) into a local cache, verifies them and converts them
// to safetensors. Node only (node:http, node:https, node:fs); the browser build loads the converted files instead.
//
// Download: streamed to `<cache>/<file>.part`. A dropped connection leaves the .part; the next run asks for the rest
// with `Range: bytes=<size>-` and appends on 206 Partial Content, or starts over when the server ignores Range (200).
// The .part is opened without following links and must be a regular file with one link (a link planted in the cache
// is refused, its target untouched). A stall — no response for `timeoutMs`, or fewer than `stallBytes` in any
// `timeoutMs` of the body — is an error, and so is a body larger than `maxBytes` (the table's size plus a margin).
// HTTP errors name the status and the URL. Redirects are followed (at most `maxRedirects`) from https only to https,
// and from http only to the same host: anything else is refused, naming both addresses (pass the final one as the
// URL to download from there). Integrity: the sha256 of the complete file must start with the prefix in
// torchvision's file name (exactly torch.hub's check_hash test) and equal the full sha256 where the table knows it;
// on a mismatch the .part is deleted and nothing else is touched. Conversion keeps the entry's `keep` prefixes and
// writes `<cache>/<name>.safetensors` atomically (writeFileAtomic), with provenance in its metadata.
// Cache: one fetch per entry at a time (a lock file, `<cache>/<name>.lock`, waited for; a dead holder's is taken
// over); a cached .safetensors is trusted only when its header parses, its tensors tile the file, and its metadata
// names this network and the expected source hash.
import { createHash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { link, lstat, mkdir, open, readFile, rename, rm, stat, utimes, type FileHandle } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { homedir, hostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { processAlive, readFileBytes, writeFileAtomic } from './files.js';
import { readPth } from './pth.js';
import { WeightFileError, readSafetensorsHeader, writeSafetensors, type TensorToWrite } from './safetensors.js';
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
  /** Give up when no response comes, or the body brings fewer than `stallBytes`, for this long (default 30 000 ms). */
  timeoutMs?: number;
  /** Fewer bytes than this in `timeoutMs` count as a stall (default 64 KiB: about 2 kB/s at the default timeout). */
  stallBytes?: number;
  /** The most bytes the whole file may have: a server announcing or sending more is stopped (default: no limit). */
  maxBytes?: number;
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
}

function describeUrl(url: string, final: string): string {
  return final === url ? url : `${url} (redirected to ${final})`;
}

/**
 * Whether a download that started at `origin` may follow a redirect to `to`: from https only to https (any host,
 * as official servers hand over to their CDNs); from http only to the same host (http, or https on the same name).
 */
export function redirectAllowed(origin: string, to: string): boolean {
  const o = new URL(origin);
  const t = new URL(to);
  if (t.protocol === 'https:') return o.protocol === 'https:' || t.hostname === o.hostname;
  return t.protocol === 'http:' && o.protocol === 'http:' && t.host === o.host;
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
        clearTimeout(deadline);
        const status = res.statusCode ?? 0;
        const location = res.headers.location;
        if ([301, 302, 303, 307, 308].includes(status) && location) {
          res.resume();
          let next: string;
          try {
            next = new URL(location, u).href;
          } catch {
            return reject(new DownloadError(`HTTP ${status} from ${u.href} redirects to an invalid address ${JSON.stringify(location.slice(0, 200))}`, from, status));
          }
          if (hops >= maxRedirects) {
            reject(new DownloadError(`too many redirects (more than ${maxRedirects}) for ${from}, last to ${location}`, from, status));
          } else if (!redirectAllowed(from, next)) {
            reject(
              new DownloadError(
                `refusing the redirect from ${u.href} to ${next}: a download from ${new URL(from).protocol}//${new URL(from).host} only follows ` +
                  `${new URL(from).protocol === 'https:' ? 'https redirects' : 'redirects on the same host'}; give that address as the URL (--url) to download from there`,
                from,
                status,
              ),
            );
          } else {
            resolveP(get(next, headers, o, from, hops + 1));
          }
          return;
        }
        resolveP({ res, url: u.href });
      },
    );
    // The whole response head must come within timeoutMs (a trickle of bytes does not keep it alive).
    const deadline = setTimeout(() => {
      timedOut = true;
      req.destroy();
    }, timeoutMs);
    req.on('error', (e) => {
      clearTimeout(deadline);
      if (o.signal?.aborted) reject(new DownloadError(`download of ${describeUrl(from, u.href)} aborted`, from, undefined, { cause: e }));
      else if (timedOut) {
        reject(new DownloadError(`timed out: no response from ${describeUrl(from, u.href)} in ${timeoutMs / 1000} s`, from, undefined, { cause: e }));
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

/** Size of `path` when it is a regular file (not a link, folder, FIFO, ...); undefined otherwise or when absent. */
async function fileSize(path: string): Promise<number | undefined> {
  try {
    const st = await lstat(path);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}

const NOFOLLOW = constants.O_NOFOLLOW ?? 0;

/**
 * Opens (creating it) a partial download for reading and writing without following a link, and checks it is a
 * regular file of its own (one link): a link or a FIFO planted in the cache would send the bytes elsewhere.
 */
async function openPart(part: string, url: string): Promise<{ fh: FileHandle; have: number }> {
  let fh: FileHandle;
  try {
    fh = await open(part, constants.O_RDWR | constants.O_CREAT | NOFOLLOW, 0o644);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ELOOP' || err.code === 'EMLINK') {
      throw new DownloadError(`${part} is a symbolic link: a partial download is never written through a link (remove it and run again)`, url, undefined, { cause: e });
    }
    throw new DownloadError(`cannot open the partial file ${part}: ${err.message}`, url, undefined, { cause: e });
  }
  const st = await fh.stat();
  if (!st.isFile() || st.nlink !== 1) {
    await fh.close();
    const what = !st.isFile() ? 'not a regular file' : `a file with ${st.nlink} links`;
    throw new DownloadError(`${part} is ${what}: a partial download is only written to a file of its own (remove it and run again)`, url);
  }
  return { fh, have: st.size };
}

/** Stops a download that makes no progress: no byte for `timeoutMs`, or fewer than `minBytes` in any `timeoutMs`. */
class StallWatch {
  private last = Date.now();
  private windowStart = Date.now();
  private windowBytes = 0;
  private readonly timer: NodeJS.Timeout;
  reason: string | undefined;
  constructor(
    private readonly timeoutMs: number,
    private readonly minBytes: number,
    stop: () => void,
  ) {
    this.timer = setInterval(() => {
      const now = Date.now();
      const s = this.timeoutMs / 1000;
      if (now - this.last >= this.timeoutMs) this.reason = `no data for ${s} s`;
      else if (now - this.windowStart >= this.timeoutMs) {
        if (this.windowBytes < this.minBytes) this.reason = `only ${this.windowBytes} bytes in the last ${s} s (at least ${this.minBytes} wanted)`;
        this.windowStart = now;
        this.windowBytes = 0;
      }
      if (this.reason) {
        this.close();
        stop();
      }
    }, Math.max(10, Math.min(1000, timeoutMs / 4)));
  }
  data(n: number): void {
    this.last = Date.now();
    this.windowBytes += n;
  }
  close(): void {
    clearInterval(this.timer);
  }
}

/**
 * Downloads `url` into `part`, resuming from the bytes already there (HTTP Range) and starting over when the server
 * does not support ranges. Throws a DownloadError (the .part is kept) when the transfer fails part way; one that
 * goes past `o.maxBytes` is stopped and its .part deleted.
 */
export async function downloadFile(url: string, part: string, o: DownloadOptions = {}): Promise<DownloadResult> {
  o.signal?.throwIfAborted();
  const { fh, have } = await openPart(part, url);
  let closed = false;
  const close = async () => {
    if (!closed) (closed = true), await fh.close();
  };
  try {
    return await download(url, part, o, fh, have, close);
  } catch (e) {
    // A partial file this call created and never wrote to is removed (an HTTP error leaves no trace).
    if (!closed && (await fh.stat()).size === 0) {
      await close();
      await rm(part, { force: true });
    }
    throw e;
  } finally {
    await close();
  }
}

async function download(url: string, part: string, o: DownloadOptions, fh: FileHandle, have: number, close: () => Promise<void>): Promise<DownloadResult> {
  const { res, url: final } = await get(url, have > 0 ? { range: `bytes=${have}-` } : {}, o);
  const where = describeUrl(url, final);
  const status = res.statusCode ?? 0;
  const length = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : undefined;
  let start = 0;
  let total: number | undefined;
  const restart = async (why: string) => {
    o.log?.(why);
    await close();
    await rm(part, { force: true });
    return downloadFile(url, part, o);
  };
  if (status === 206 && have > 0) {
    const cr = parseContentRange(res.headers['content-range']);
    if (!cr || cr.start !== have) {
      res.destroy();
      return await restart(`server answered the resume request with Content-Range ${res.headers['content-range'] ?? '(none)'}: downloading from the start`);
    }
    start = have;
    total = cr.total ?? (length !== undefined ? have + length : undefined);
  } else if (status === 416 && have > 0) {
    res.resume();
    const cr = parseContentRange(res.headers['content-range']);
    if (cr?.total === have) return { bytes: have, resumedFrom: have }; // the .part was already complete
    return await restart(`server refused to resume at byte ${have} (HTTP 416): downloading from the start`);
  } else if (status === 200) {
    if (have > 0) o.log?.(`server ignored the resume request (HTTP 200 instead of 206): downloading from the start`);
    total = length;
  } else {
    res.resume();
    throw new DownloadError(`HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''} for ${where}`, url, status);
  }
  const max = o.maxBytes;
  if (max !== undefined && total !== undefined && total > max) {
    res.destroy();
    throw new DownloadError(`${where} announces ${total} bytes, more than the ${max} this file can have: nothing was downloaded`, url);
  }
  if (start > 0) o.log?.(`resuming at byte ${start}${total !== undefined ? ` of ${total}` : ''}`);
  else await fh.truncate(0);

  let done = start;
  const timeoutMs = o.timeoutMs ?? 30_000;
  let tooBig = false;
  const watch = new StallWatch(timeoutMs, o.stallBytes ?? 65536, () => res.destroy(new Error('stalled')));
  try {
    o.onProgress?.(done, total);
    for await (const chunk of res as AsyncIterable<Buffer>) {
      watch.data(chunk.length);
      if (max !== undefined && done + chunk.length > max) {
        tooBig = true;
        res.destroy();
        break;
      }
      await fh.write(chunk, 0, chunk.length, done);
      done += chunk.length;
      o.onProgress?.(done, total);
    }
  } catch (e) {
    const got = `after ${done}${total !== undefined ? ` of ${total}` : ''} bytes`;
    const kept = `the partial file ${part} is kept: run again to resume`;
    if (o.signal?.aborted) throw new DownloadError(`download of ${where} aborted ${got}; ${kept}`, url, undefined, { cause: e });
    if (watch.reason) throw new DownloadError(`download of ${where} stalled ${got}: ${watch.reason}; ${kept}`, url, undefined, { cause: e });
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ECONNRESET' || err.message === 'aborted' ? 'the connection was closed' : err.message;
    throw new DownloadError(`download of ${where} interrupted ${got} (${why}); ${kept}`, url, undefined, { cause: e });
  } finally {
    watch.close();
  }
  if (tooBig) {
    await close();
    await rm(part, { force: true });
    throw new DownloadError(`download of ${where} went past ${max} bytes, more than this file can have: stopped, and the partial file deleted`, url);
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
  /** A lock older than this whose holder cannot be checked (another machine) is taken over (default 10 minutes). */
  staleLockMs?: number;
}

function checksumMessage(where: string, e: ExpectedHash, digest: string): string {
  const want = e.full ? `sha256 ${e.full}` : `a sha256 starting with ${e.prefix} (the hash prefix in the file name, as torch.hub checks)`;
  return `checksum mismatch for ${where}: expected ${want}, found ${digest}; the download was deleted`;
}

/** The largest download accepted for an entry: its size in the table plus 5 % and 1 MiB (none when unknown). */
export function maxDownloadBytes(entry: ZooEntry): number | undefined {
  return entry.size === undefined ? undefined : Math.ceil(entry.size * 1.05) + (1 << 20);
}

/**
 * Why the cached `<name>.safetensors` cannot be trusted, or undefined when it can: it must be a regular file whose
 * header parses with tensors that tile the file, holding this network (metadata arch) converted from a file with
 * the expected hash (metadata source_sha256).
 */
export async function cachedFileProblem(path: string, entry: ZooEntry, expected: ExpectedHash): Promise<string | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | NOFOLLOW);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return err.code === 'ENOENT' ? 'absent' : err.code === 'ELOOP' || err.code === 'EMLINK' ? 'it is a symbolic link' : err.message;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return 'it is not a regular file';
    const head = new Uint8Array(8);
    const { bytesRead } = await fh.read(head, 0, 8, 0);
    if (bytesRead < 8) return `${st.size} bytes is too short for a safetensors file`;
    const n = new DataView(head.buffer).getBigUint64(0, true);
    if (n > BigInt(Math.min(st.size - 8, 100_000_000))) return `its header length ${n} does not fit the file (${st.size} bytes)`;
    const bytes = new Uint8Array(8 + Number(n));
    await fh.read(bytes, 0, bytes.length, 0);
    let header;
    try {
      header = readSafetensorsHeader(bytes, st.size, path);
    } catch (e) {
      return (e as Error).message.slice(path.length + 2);
    }
    if (header.entries.length === 0) return 'it holds no tensors';
    const { arch, source_sha256: source } = header.metadata;
    if (arch !== entry.arch) return `its metadata names ${arch === undefined ? 'no network' : `network ${JSON.stringify(arch)}`}, not ${entry.arch}`;
    if (source === undefined || !hashMatches(expected, source)) {
      return `it was converted from a file with sha256 ${source ?? '(not recorded)'}, not the expected ${expected.full ?? `${expected.prefix}...`}`;
    }
    return undefined;
  } finally {
    await fh.close();
  }
}

interface LockHolder {
  pid: number;
  host: string;
  since: string;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((res, rej) => {
    const t = setTimeout(res, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), rej(signal.reason)), { once: true });
  });

/**
 * Takes `<dir>/<name>.lock` (created exclusively, never through a link), waiting while a live process holds it and
 * taking over a dead holder's. Returns the release function and whether it had to wait for another fetch.
 */
async function lockEntry(lock: string, o: FetchOptions, url: string): Promise<{ release: () => Promise<void>; waited: boolean }> {
  const me: LockHolder = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  const mine = JSON.stringify(me);
  let waited = false;
  for (;;) {
    o.signal?.throwIfAborted();
    try {
      const fh = await open(lock, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW, 0o644);
      try {
        await fh.writeFile(mine);
      } finally {
        await fh.close();
      }
      const release = async () => {
        // Only our own lock: a holder that took over a lock it thought dead has its own.
        if ((await readFile(lock, 'utf8').catch(() => '')) === mine) await rm(lock, { force: true });
      };
      return { release, waited };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new DownloadError(`cannot lock ${lock}: ${(e as Error).message}`, url, undefined, { cause: e });
      }
    }
    const text = await readLock(lock, url);
    if (text === undefined) continue; // released meanwhile
    const holder = parseHolder(text);
    const age = Date.now() - ((await stat(lock).catch(() => undefined))?.mtimeMs ?? Date.now());
    const dead =
      holder === undefined
        ? age > 10_000 // unreadable: a holder killed between creating and writing it
        : holder.host === me.host
          ? !processAlive(holder.pid)
          : age > (o.staleLockMs ?? 600_000);
    if (dead) {
      o.log?.(`taking over ${lock}: ${holder ? `its holder (pid ${holder.pid} on ${holder.host}) is gone` : 'it is unreadable'}`);
      await takeOver(lock, text);
      continue;
    }
    if (!waited) o.log?.(`waiting for another fetch of this network (pid ${holder!.pid}${holder!.host === me.host ? '' : ` on ${holder!.host}`}) to finish`);
    waited = true;
    await sleep(100, o.signal);
  }
}

async function readLock(lock: string, url: string): Promise<string | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(lock, constants.O_RDONLY | NOFOLLOW);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') return undefined;
    throw new DownloadError(`cannot read the lock ${lock}: ${err.code === 'ELOOP' ? 'it is a symbolic link (remove it)' : err.message}`, url, undefined, { cause: e });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > 4096) throw new DownloadError(`the lock ${lock} is not a lock file of this program (remove it)`, url);
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const h = JSON.parse(text) as LockHolder;
    return Number.isSafeInteger(h.pid) && typeof h.host === 'string' ? h : undefined;
  } catch {
    return undefined;
  }
}

/** Removes a dead holder's lock: moved aside first, and put back if it turned out to be a new holder's. */
async function takeOver(lock: string, seen: string): Promise<void> {
  const aside = `${lock}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.stale`;
  try {
    await rename(lock, aside);
  } catch {
    return; // someone else moved it
  }
  if ((await readFile(aside, 'utf8').catch(() => seen)) !== seen) await link(aside, lock).catch(() => undefined);
  await rm(aside, { force: true });
}

/**
 * Makes sure `<cacheDir>/<name>.safetensors` exists (downloading, verifying and converting the official checkpoint if
 * needed) and returns its path. Safe to interrupt: an unfinished download resumes on the next call. Safe to run
 * twice at once: the second waits for the first and uses its result.
 */
export async function fetchWeights(name: string, o: FetchOptions = {}): Promise<string> {
  const entry = zooEntry(name);
  const expected = expectedHash(entry, o.sha256);
  const dir = o.cacheDir ?? defaultCacheDir();
  const out = join(dir, `${entry.name}.safetensors`);
  if (!o.force && (await cachedFileProblem(out, entry, expected)) === undefined) return out;
  await mkdir(dir, { recursive: true });
  const url = o.url ?? entry.url;
  const lock = join(dir, `${entry.name}.lock`);
  const { release, waited } = await lockEntry(lock, o, url);
  try {
    const problem = await cachedFileProblem(out, entry, expected);
    // After waiting, what the other fetch just wrote is what a forced fetch would write.
    if (problem === undefined && (!o.force || waited)) return out;
    if (problem !== undefined && problem !== 'absent') o.log?.(`not using the cached ${out}: ${problem}`);
    // The lock's time shows a fetch on another machine (a shared cache) that this one is alive.
    let touched = Date.now();
    const onProgress = (done: number, total: number | undefined) => {
      if (Date.now() - touched > 10_000) {
        touched = Date.now();
        void utimes(lock, new Date(), new Date()).catch(() => undefined);
      }
      o.onProgress?.(done, total);
    };
    return await fetchLocked(entry, expected, out, url, { ...o, onProgress });
  } finally {
    await release();
  }
}

async function fetchLocked(entry: ZooEntry, expected: ExpectedHash, out: string, url: string, o: FetchOptions): Promise<string> {
  const dir = o.cacheDir ?? defaultCacheDir();
  const pth = join(dir, entry.file);
  const part = `${pth}.part`;
  if (o.force) await rm(part, { force: true });

  let file: string | undefined;
  let digest = '';
  if (!o.force && (await fileSize(pth)) !== undefined) {
    digest = await sha256File(pth);
    if (hashMatches(expected, digest)) file = pth;
    else o.log?.(`ignoring ${pth}: its sha256 ${digest} is not the expected one`);
  }
  if (!file) {
    await downloadFile(url, part, { ...o, maxBytes: o.maxBytes ?? maxDownloadBytes(entry) });
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
