// Node-only file helpers for the (pure, browser-safe) readers and writers in this folder.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { readPth, type PthFile } from './pth.js';
import { readSafetensors, type SafetensorsFile } from './safetensors.js';

/** The whole file as a plain Uint8Array (not a Buffer, so it compares equal to other Uint8Arrays). */
export async function readFileBytes(path: string): Promise<Uint8Array> {
  const b = await readFile(path);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export function readFileBytesSync(path: string): Uint8Array {
  const b = readFileSync(path);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
}

/** tempName's pattern: `.<name>.<pid>.<random base36>.tmp`; group 1 is the writer's PID. */
const TEMP_NAME = /^\..+\.(\d+)\.[0-9a-z]{1,8}\.tmp$/;

/** Whether a process with this PID runs on this machine (EPERM: it does, as another user). */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temp files writeFileAtomic left in `dir` when its process was killed mid-write: only names of its
 * pattern whose writer PID no longer runs (a live writer's file is its own business). Returns the names removed.
 */
export async function removeStaleTempFiles(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dir)) {
    const m = TEMP_NAME.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    await rm(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

/** Best effort: make the rename itself durable (fsync of the directory; not possible on Windows). */
async function syncDir(dir: string): Promise<void> {
  try {
    const h = await open(dir, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  } catch {
    /* not supported on this platform */
  }
}

export interface WriteAtomicOptions {
  /** Called with the temp file's bytes as read back after the fsync, before the rename: a throw keeps the old
   *  file (and removes the temp file), so the old file is only replaced by a new one that was checked. */
  verify?: (written: Uint8Array) => void | Promise<void>;
}

/**
 * Writes `data` to `path` atomically: a temporary file in the same directory is written, fsynced, then renamed
 * over `path`. Readers see the old file or the new one, never a partial one; on failure the temp file is removed.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, opts: WriteAtomicOptions = {}): Promise<void> {
  const tmp = tempName(path);
  try {
    const h = await open(tmp, 'wx');
    try {
      await h.writeFile(data);
      await h.sync();
    } finally {
      await h.close();
    }
    if (opts.verify) await opts.verify(await readFileBytes(tmp));
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await syncDir(dirname(path));
}

export function writeFileAtomicSync(path: string, data: Uint8Array | string): void {
  const tmp = tempName(path);
  try {
    const fd = openSync(tmp, 'wx');
    try {
      const buf = typeof data === 'string' ? new TextEncoder().encode(data) : data;
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  try {
    const fd = openSync(dirname(path), 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* not supported on this platform */
  }
}

/** Reads a .safetensors file, or a torch.save checkpoint (.pth/.pt/.ckpt/...), chosen by content (zip magic). */
export async function readWeightsFile(path: string): Promise<SafetensorsFile | PthFile> {
  const bytes = await readFileBytes(path);
  const isZip = bytes[0] === 0x50 && bytes[1] === 0x4b;
  const isPickle = bytes[0] === 0x80 && bytes.length > 1 && bytes[1] <= 5;
  return isZip || isPickle || /\.(pth|pt|ckpt|bin|tar)$/i.test(path) ? readPth(bytes, path) : readSafetensors(bytes, path);
}
