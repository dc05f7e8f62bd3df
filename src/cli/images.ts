// What stylize and upscale share. Everything that can be checked is checked before the GPU starts: the output
// folder (a folder, writable, or creatable), every input (files, or folders standing for their image files,
// sub-folders with --recursive), each image's header (readable, within --max-pixels: a small file can declare
// gigapixels), and the output names (no output may overwrite an input, no two inputs may share an output). Bad images
// are reported by name and the others still processed; the output folder is created at the first output written,
// so a run that writes nothing leaves nothing. Progress counts pixels, so an image's tiles move it too.
import { constants } from 'node:fs';
import { access, mkdir, readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, IMAGE_FORMATS, pixelLimitError, probeImage, type ImageHeader } from '../io/image-node.js';
import { Progress } from './progress.js';

/** The options stylize and upscale both take for their inputs and outputs. */
export const imageOptions = {
  recursive: { type: 'boolean', short: 'r', help: 'also read the images in sub-folders of folder inputs (outputs\nkeep the sub-folders)' },
  'max-pixels': { type: 'int', arg: 'N', min: 1, default: DEFAULT_MAX_PIXELS, help: 'refuse images larger than N pixels, from their header, before\ndecoding (large photos run in tiles)' },
  quiet: { type: 'boolean', short: 'q', help: 'no progress line' },
} as const;

export const READS = `Reads ${IMAGE_FORMATS} (the first frame or page).`;

export interface ImageJob {
  input: string;
  output: string;
  header: ImageHeader;
}

export interface ImagePlan {
  jobs: ImageJob[];
  /** Inputs refused before any work (unreadable, not an image, beyond the pixel limit), with the reason. */
  refused: { file: string; message: string }[];
}

export interface PlanOptions {
  out: string;
  /** Extension of the outputs, without the dot. */
  ext: string;
  recursive?: boolean;
  maxPixels: number;
}

/** A failure of the command as a whole, found before any work: one line, exit 1. */
const fail = (message: string): never => {
  throw new Error(message);
};

/** --out must be a folder we can write, or one we can create: checked before any work, created only when used. */
export async function checkOutputFolder(out: string): Promise<void> {
  const s = await stat(out).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : fail(`--out '${out}': ${e.code === 'ENOTDIR' ? 'a part of the path is a file' : e.message}`)));
  if (s && !s.isDirectory()) fail(`--out '${out}' is a file, not a folder`);
  if (s) return writable(out, `--out '${out}' is not writable`);
  // The nearest existing folder above it must let us create the rest.
  let up = dirname(resolve(out));
  for (;;) {
    const u = await stat(up).catch(() => null);
    if (u) {
      if (!u.isDirectory()) fail(`--out '${out}' cannot be created: '${relative('.', up) || up}' is a file`);
      return writable(up, `--out '${out}' cannot be created: '${relative('.', up) || up}' is not writable`);
    }
    if (dirname(up) === up) return;
    up = dirname(up);
  }
}

async function writable(dir: string, message: string): Promise<void> {
  await access(dir, constants.W_OK | constants.X_OK).catch((e: NodeJS.ErrnoException) => fail(`${message} (${e.code === 'EROFS' ? 'read-only file system' : 'permission denied'})`));
}

/** The image files of a folder, sorted; with `recursive`, those of its sub-folders too, but never `exclude` (the
 *  output folder inside an input folder: its images are this command's outputs). */
async function listFolder(dir: string, recursive: boolean, exclude: string): Promise<{ files: string[]; skipped: number }> {
  const files: string[] = [];
  let skipped = 0;
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = join(dir, e.name);
    const isDir = e.isDirectory() || (e.isSymbolicLink() && (await stat(p).catch(() => null))?.isDirectory());
    if (isDir) {
      if (resolve(p) === exclude) continue;
      if (!recursive) skipped++;
      else files.push(...(await listFolder(p, true, exclude)).files);
    } else if (IMAGE_EXTENSIONS.includes(extname(e.name).toLowerCase())) files.push(p);
  }
  return { files, skipped };
}

const identity = (s: { dev: number; ino: number }) => `${s.dev}:${s.ino}`;

/**
 * The images to process and where each goes, with everything checked that can be before the GPU starts. Throws
 * (one line, exit 1) when the command cannot run at all: --out unusable, an input missing, a folder without images,
 * an output that would overwrite an input, two inputs for one output. Prints a note for skipped sub-folders.
 */
export async function planImages(inputs: string[], o: PlanOptions, note: (m: string) => void): Promise<ImagePlan> {
  await checkOutputFolder(o.out);
  const found: { file: string; sub: string }[] = [];
  for (const p of inputs) {
    const s = await stat(p).catch((e: NodeJS.ErrnoException) => fail(`'${p}': ${e.code === 'ENOENT' ? 'no such file or folder' : e.code === 'EACCES' ? 'permission denied' : e.message}`));
    if (!s.isDirectory()) {
      found.push({ file: p, sub: '' });
      continue;
    }
    const { files, skipped } = await listFolder(p, !!o.recursive, resolve(o.out));
    const subs = `${skipped} sub-folder${skipped > 1 ? 's' : ''}`;
    if (!files.length) fail(`folder '${p}' holds no image files (${IMAGE_FORMATS})${skipped ? `; it has ${subs}: --recursive reads them` : ''}`);
    if (skipped) note(`'${p}': ${subs} skipped (--recursive reads them)`);
    for (const f of files) found.push({ file: f, sub: relative(p, dirname(f)) });
  }

  // No output may overwrite an input (by any name: links included) and no two inputs may share an output.
  const inputIds = new Map<string, string>();
  for (const { file } of found) {
    const s = await stat(file).catch(() => null);
    if (s) inputIds.set(identity(s), file);
  }
  const outputs = new Map<string, string>();
  const planned: { file: string; output: string }[] = [];
  for (const { file, sub } of found) {
    const output = join(o.out, sub, `${basename(file, extname(file))}.${o.ext}`);
    const key = resolve(output);
    const other = outputs.get(key);
    if (other !== undefined && other !== file) fail(`'${other}' and '${file}' would both be written to '${output}': rename one, or run them separately`);
    if (other === file) continue; // the same file given twice
    outputs.set(key, file);
    const existing = await stat(output).catch(() => null);
    const overwritten = existing && inputIds.get(identity(existing));
    if (overwritten) fail(`writing '${output}' (from '${file}') would overwrite the input '${overwritten}': choose another --out`);
    planned.push({ file, output });
  }

  const plan: ImagePlan = { jobs: [], refused: [] };
  for (const { file, output } of planned) {
    try {
      const header = await probeImage(file);
      const big = pixelLimitError(file, header, o.maxPixels);
      if (big) plan.refused.push({ file, message: `${big}; --max-pixels ${header.width * header.height} allows it` });
      else plan.jobs.push({ input: file, output, header });
    } catch (e) {
      plan.refused.push({ file, message: (e as Error).message });
    }
  }
  return plan;
}

/** The progress of one image: units done of a total (tiles × stages), as the library reports them. */
export type ImageProgress = (p: { done: number; total: number; detail?: string }) => void;

export interface RunOptions {
  quiet?: boolean;
}

/**
 * Runs `each` on every planned image, refused ones reported first; `each` returns the line to print (stdout) and
 * reports its progress within the image. Failures are printed as `perceptual COMMAND: FILE: message` and counted;
 * returns the exit code (1 if any image was refused or failed).
 */
export async function runImages(command: string, plan: ImagePlan, each: (job: ImageJob, progress: ImageProgress) => Promise<string>, o: RunOptions = {}): Promise<number> {
  const say = (file: string, message: string) => console.error(`perceptual ${command}: ${message.includes(file) ? message : `${file}: ${message}`}`);
  for (const r of plan.refused) say(r.file, r.message);
  const total = plan.jobs.reduce((n, j) => n + j.header.width * j.header.height, 0);
  const progress = o.quiet || !plan.jobs.length ? undefined : new Progress({ label: command, total, unit: 'pixels' });
  const around = (print: () => void) => (progress ? progress.interrupt(print) : print());
  let failed = 0;
  let before = 0;
  const n = plan.jobs.length;
  for (const [i, job] of plan.jobs.entries()) {
    const px = job.header.width * job.header.height;
    const where = `${n > 1 ? `image ${i + 1}/${n} ` : ''}${basename(job.input)}`;
    progress?.update(before, total, where);
    try {
      const line = await each(job, (p) => progress?.update(before + Math.round((px * p.done) / Math.max(1, p.total)), total, p.detail ? `${where} ${p.detail}` : where));
      around(() => console.log(line));
    } catch (e) {
      failed++;
      around(() => say(job.input, e instanceof Error ? e.message : String(e)));
    }
    before += px;
    progress?.update(before, total, where);
  }
  progress?.finish();
  const bad = failed + plan.refused.length;
  const all = n + plan.refused.length;
  if (bad) console.error(`perceptual ${command}: ${bad} of ${all} image${all > 1 ? 's' : ''} failed`);
  return bad ? 1 : 0;
}

/** Creates the output's folder (the first output creates --out). */
export async function outputFolder(output: string): Promise<void> {
  await mkdir(dirname(output), { recursive: true });
}

/** What the line of an image adds about its alpha channel and bit depth. */
export function formatNotes(h: ImageHeader, ext: string): string {
  const notes: string[] = [];
  if (h.alpha) notes.push(ext === 'png' ? 'alpha kept' : 'alpha dropped: JPEG has none, use --format png');
  if (h.bits > 8) notes.push(`${h.bits}-bit input written as 8-bit`);
  return notes.length ? `; ${notes.join('; ')}` : '';
}
