// What stylize and upscale share: inputs are files or folders (a folder stands for its image files, sorted); each
// image is processed on its own, so an unreadable one is reported by name while the others still go through;
// several images get a progress line.
import { stat } from 'node:fs/promises';
import { Progress } from './progress.js';

/** Files as given; folders replaced by the image files `listFolder` finds in them. */
export async function expandInputs(inputs: string[], listFolder: (dir: string) => string[] | Promise<string[]>): Promise<string[]> {
  const files: string[] = [];
  for (const p of inputs) {
    const s = await stat(p).catch(() => null);
    if (s?.isDirectory()) files.push(...(await listFolder(p)));
    else files.push(p);
  }
  return files;
}

/**
 * Runs `each` on every file; it returns the line to print for it (stdout). Failures are printed as
 * `perceptual COMMAND: FILE: message` and counted; returns the exit code (1 if any image failed).
 */
export async function forEachImage(command: string, files: string[], each: (file: string) => Promise<string>): Promise<number> {
  const progress = files.length > 1 ? new Progress({ label: command, total: files.length }) : undefined;
  const around = (print: () => void) => (progress ? progress.interrupt(print) : print());
  let failed = 0;
  for (const [i, f] of files.entries()) {
    try {
      const line = await each(f);
      around(() => console.log(line));
    } catch (e) {
      failed++;
      around(() => console.error(`perceptual ${command}: ${f}: ${e instanceof Error ? e.message : String(e)}`));
    }
    progress?.update(i + 1);
  }
  progress?.finish();
  if (failed) console.error(`perceptual ${command}: ${failed} of ${files.length} image(s) failed`);
  return failed ? 1 : 0;
}
