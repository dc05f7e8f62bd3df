// A training run's output folder, kept by the trainer (trainer.ts):
//   lock      `<dir>/train.lock`, created exclusively ('wx') with the owner's PID, host and start time, removed when
//             the run ends (also on process exit). A second run into the folder is refused, naming the owner; a lock
//             whose PID no longer runs on this host is stale and taken over (renamed away first, so of two runs
//             taking over the same stale lock one wins). A lock from another host cannot be checked: refused.
//   set aside a fresh run (overwrite) first moves the previous run's files into `<dir>/previous-run` (one rename
//             each), deletes them once it has its first good checkpoint, and puts them back when it fails before
//             that; a run killed in between leaves the folder, which the next run's start resolves the same way.
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { processAlive } from '../io/files.js';

export const LOCK_FILE = 'train.lock';
export const PREVIOUS_RUN_DIR = 'previous-run';

interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

/** The folder is in use by another training run. */
export class OutDirLockedError extends Error {
  override name = 'OutDirLockedError';
  constructor(
    message: string,
    readonly dir: string,
    readonly owner: LockOwner | null,
  ) {
    super(message);
  }
}

export interface RunLock {
  path: string;
  /** The stale lock taken over (its PID had ended), or null. */
  tookOver: LockOwner | null;
  /** Removes the lock if it is still ours; idempotent. */
  release(): Promise<void>;
}

function parseOwner(text: string): LockOwner | null {
  try {
    const o = JSON.parse(text) as LockOwner;
    return Number.isSafeInteger(o.pid) && o.pid > 0 && typeof o.host === 'string' && typeof o.since === 'string' ? o : null;
  } catch {
    return null;
  }
}

/** A lock file too young to judge: its creator may be between the exclusive create and the write of its contents. */
const UNWRITTEN_GRACE_MS = 5000;

/** Takes `<dir>/train.lock` (the folder must exist); throws OutDirLockedError when another live run holds it. */
export async function lockRunDir(dir: string): Promise<RunLock> {
  const path = join(dir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  const text = `${JSON.stringify(me)}\n`;
  let tookOver: LockOwner | null = null;
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(path, text, { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let seen: string;
    try {
      seen = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && attempt < 5) continue; // released meanwhile
      throw e;
    }
    const owner = parseOwner(seen);
    const young = owner === null && Date.now() - ((await stat(path).catch(() => null))?.mtimeMs ?? 0) < UNWRITTEN_GRACE_MS;
    const live = owner ? owner.host !== me.host || processAlive(owner.pid) : young;
    if (live || attempt >= 5) {
      const who = owner ? `PID ${owner.pid}${owner.host !== me.host ? ` on host ${owner.host}` : ''}, since ${owner.since}` : 'owner unreadable';
      const hint = owner && owner.host !== me.host ? `; if that run has ended, delete ${path}` : '';
      throw new OutDirLockedError(`train: ${dir} is in use by another training run (${who}; lock ${path})${hint}`, dir, owner);
    }
    // Stale: move it out of the way under a name of our own, and drop it only if it is still the one judged.
    const aside = `${path}.${process.pid}.stale`;
    try {
      await rename(path, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // someone else took it over first
      throw e;
    }
    if ((await readFile(aside, 'utf8')) !== seen) {
      // A live lock created since we read the stale one: put it back (link: never over a lock made meanwhile).
      await link(aside, path).catch(() => {});
      await rm(aside, { force: true });
      continue;
    }
    await rm(aside, { force: true });
    tookOver = owner;
  }
  const ours = () => {
    try {
      return readFileSync(path, 'utf8') === text;
    } catch {
      return false;
    }
  };
  // A process that exits without unwinding (process.exit) still releases the lock.
  const onExit = () => {
    if (ours()) unlinkSync(path);
  };
  process.on('exit', onExit);
  let released = false;
  return {
    path,
    tookOver,
    release: async () => {
      if (released) return;
      released = true;
      process.off('exit', onExit);
      if (ours()) await rm(path, { force: true });
    },
  };
}

/** Moves the entries of `names` that exist in `dir` into `<dir>/previous-run` (which must not exist). Returns them. */
export async function setAside(dir: string, names: readonly string[]): Promise<string[]> {
  const present = names.filter((n) => existsSync(join(dir, n)));
  if (!present.length) return [];
  const aside = join(dir, PREVIOUS_RUN_DIR);
  await mkdir(aside);
  for (const n of present) await rename(join(dir, n), join(aside, n));
  return present;
}

/** Deletes `<dir>/previous-run`: the new run has its first good checkpoint. */
export async function dropAside(dir: string): Promise<void> {
  await rm(join(dir, PREVIOUS_RUN_DIR), { recursive: true, force: true });
}

/** Puts the set-aside files back, first removing the failed new run's files of the same `names`. */
export async function restoreAside(dir: string, names: readonly string[]): Promise<string[]> {
  const aside = join(dir, PREVIOUS_RUN_DIR);
  const back = (await readdir(aside)).sort();
  for (const n of new Set([...names, ...back])) await rm(join(dir, n), { recursive: true, force: true });
  for (const n of back) await rename(join(aside, n), join(dir, n));
  await rm(aside, { recursive: true, force: true });
  return back;
}
