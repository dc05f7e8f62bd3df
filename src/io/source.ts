// Where model and weight bytes come from: bytes already in memory, or a URL, fetched. Browser-safe; the Node
// entry's loaders read local paths too (source-node.ts).
export type Source = string | URL | Uint8Array | ArrayBuffer;

export interface SourceBytes {
  bytes: Uint8Array;
  /** The URL or path, for error messages (absent for bytes). */
  name?: string;
}

/** Bytes as given, or fetched from a URL (a relative URL resolves against the page, as fetch does). */
export async function readSource(source: Source): Promise<SourceBytes> {
  if (source instanceof Uint8Array) return { bytes: source };
  if (source instanceof ArrayBuffer) return { bytes: new Uint8Array(source) };
  const name = String(source);
  // A relative URL resolves against the page; with no page (Node) the string is most likely a path.
  if (typeof source === 'string' && typeof location === 'undefined' && !URL.canParse(source)) {
    throw new Error(`cannot fetch ${name}: not a URL (paths are read by the Node entry's loaders, src/index.ts)`);
  }
  let res: Response;
  try {
    res = await fetch(source);
  } catch (e) {
    throw new Error(`cannot fetch ${name}: ${(e as Error).message}`);
  }
  if (!res.ok) throw new Error(`cannot fetch ${name}: HTTP ${res.status} ${res.statusText}`);
  return { bytes: new Uint8Array(await res.arrayBuffer()), name };
}
