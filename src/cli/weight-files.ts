// Model and weight files named on the command line (--model, --weights, --loss-weights), checked before the GPU
// starts: a missing path, a folder, or a file that is plainly something else (text, an image, a web page) is one line
// naming the flag, the path, what the file is and what was expected.
import { open, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { readFileBytes } from '../io/files.js';

const EXPECTED = 'expected a safetensors file or a PyTorch checkpoint (.pth, a zip archive)';

/** What the first bytes of a file say it is, when it is plainly not a weight file; null when it may be one. */
export function notAWeightFile(head: Uint8Array, size: number): string | null {
  if (size === 0) return 'an empty file';
  const starts = (...b: number[]) => b.every((v, i) => head[i] === v);
  if (starts(0x50, 0x4b) || (head[0] === 0x80 && head[1] <= 5)) return null; // a zip archive (torch.save) or a bare pickle
  // safetensors: an 8-byte little-endian header length, then the JSON header.
  if (size >= 9 && head[8] === 0x7b && head[4] === 0 && head[5] === 0 && head[6] === 0 && head[7] === 0) return null;
  if (starts(0x89, 0x50, 0x4e, 0x47)) return 'a PNG image';
  if (starts(0xff, 0xd8, 0xff)) return 'a JPEG image';
  if (starts(0x47, 0x49, 0x46)) return 'a GIF image';
  if (starts(0x1f, 0x8b)) return 'a gzip archive';
  const text = new TextDecoder('utf-8', { fatal: false }).decode(head);
  if (/^\s*<(!doctype html|html)/i.test(text)) return 'an HTML page (a download that returned a web page?)';
  const printable = [...head].filter((b) => b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127) || b >= 128).length;
  if (printable === head.length) {
    const first = text.split('\n')[0].trim().slice(0, 40);
    return `a text file${first ? ` (it starts '${first}')` : ''}`;
  }
  return 'not a weight file (an unrecognised binary format)';
}

/** Checks a file given with `flag`: exists, is a file, and is not plainly something else. Throws one line. */
export async function checkWeightFile(path: string, flag: string): Promise<void> {
  const s = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new Error(`${flag} '${path}': ${e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.message}`);
  });
  if (s.isDirectory()) throw new Error(`${flag} '${path}' is a folder, not a file (${EXPECTED})`);
  const f = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new Error(`${flag} '${path}': ${e.code === 'EACCES' ? 'permission denied' : e.message}`);
  });
  try {
    const head = new Uint8Array(64);
    const { bytesRead } = await f.read(head, 0, 64, 0);
    const what = notAWeightFile(head.subarray(0, bytesRead), s.size);
    if (what) throw new Error(`${flag} '${path}' is ${what}: ${EXPECTED}`);
  } finally {
    await f.close();
  }
}

/** checkWeightFile, then the file's bytes. */
export async function readWeightFile(path: string, flag: string): Promise<Uint8Array> {
  await checkWeightFile(path, flag);
  return readFileBytes(path);
}

/** `--model`, or the model shipped in the package when it is not given: the path to read and the name that
 *  messages use for it. */
export function modelOption(given: string | undefined, shipped: { name: string; url: URL }): { path: string; name: string } {
  return given === undefined ? { path: fileURLToPath(shipped.url), name: shipped.name } : { path: given, name: given };
}
