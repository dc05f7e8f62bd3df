// Node's reading of a Source: a string is a path, or a file: or http(s): URL; a URL object file: or http(s):.
import { fileURLToPath } from 'node:url';
import { readFileBytes } from './files.js';
import { readSource, type Source, type SourceBytes } from './source.js';

function localPath(source: Source): string | null {
  if (source instanceof URL) return source.protocol === 'file:' ? fileURLToPath(source) : null;
  if (typeof source !== 'string') return null;
  if (/^file:/i.test(source)) return fileURLToPath(source);
  return /^https?:/i.test(source) ? null : source;
}

export async function readSourceNode(source: Source): Promise<SourceBytes> {
  const path = localPath(source);
  return path === null ? readSource(source) : { bytes: await readFileBytes(path), name: path };
}
