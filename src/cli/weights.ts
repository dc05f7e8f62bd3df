// `perceptual weights fetch <name>`: download an official pretrained loss network into the cache, verify it, convert
// it to safetensors and print the path. `perceptual weights list`: the known networks and whether they are cached.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ChecksumError, DownloadError, defaultCacheDir, fetchWeights } from '../io/fetch.js';
import { WeightFileError } from '../io/safetensors.js';
import { ZOO, ZOO_NAMES, isZooName } from '../io/zoo.js';
import { Progress, formatBytes } from './progress.js';

const USAGE = `usage: perceptual weights fetch <${ZOO_NAMES.join('|')}> [--cache-dir DIR] [--url URL] [--force] [--keep-pth]
       perceptual weights list [--cache-dir DIR]

fetch   downloads the official torchvision checkpoint, checks its sha256 (the prefix in the file name, as torch.hub
        does, and the full hash where known), keeps the convolutional trunk and writes <cache>/<name>.safetensors;
        prints its path. An interrupted download resumes on the next run.
list    the known networks, their source and whether they are in the cache.

options:
  --cache-dir DIR   cache folder (default: $PERCEPTUAL_CACHE_DIR, else $XDG_CACHE_HOME/perceptual-webgpu,
                    else ~/.cache/perceptual-webgpu)
  --url URL         download from this mirror instead of the official address (the hash is still checked)
  --sha256 HEX      expected sha256 (64 hex digits, or a prefix of at least 8) instead of the table's
  --force           download and convert again even if the .safetensors exists
  --keep-pth        keep the verified .pth in the cache (reused by later runs)
  --timeout SEC     give up when no data arrives for SEC seconds (default 30)
  --quiet           no progress output
  -h, --help        this text`;

function usageError(msg: string): number {
  console.error(`perceptual weights: ${msg}\n\n${USAGE}`);
  return 2;
}

export async function weights(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'cache-dir': { type: 'string' },
        url: { type: 'string' },
        sha256: { type: 'string' },
        force: { type: 'boolean' },
        'keep-pth': { type: 'boolean' },
        timeout: { type: 'string' },
        quiet: { type: 'boolean', short: 'q' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    return usageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const [sub, ...rest] = positionals;
  const cacheDir = values['cache-dir'] ?? defaultCacheDir();
  if (sub === 'list') {
    if (rest.length) return usageError(`unexpected argument '${rest[0]}'`);
    for (const n of ZOO_NAMES) {
      const e = ZOO[n];
      const path = join(cacheDir, `${n}.safetensors`);
      const size = e.size !== undefined ? ` (${formatBytes(e.size)} download)` : '';
      console.log(`${n.padEnd(14)} ${existsSync(path) ? path : 'not cached'}\n${''.padEnd(14)} ${e.description}; ${e.url}${size}`);
    }
    return 0;
  }
  if (sub !== 'fetch') return usageError(sub ? `unknown subcommand '${sub}'` : 'missing subcommand (fetch or list)');
  if (rest.length !== 1) return usageError(rest.length ? `expected one network name, got ${rest.join(' ')}` : 'missing network name');
  const name = rest[0];
  if (!isZooName(name)) return usageError(`unknown network '${name}' (known: ${ZOO_NAMES.join(', ')})`);
  if (values.sha256 !== undefined && !/^[0-9a-f]{8,64}$/i.test(values.sha256)) {
    return usageError(`--sha256 must be 8 to 64 hex digits, got '${values.sha256}'`);
  }
  let timeoutMs: number | undefined;
  if (values.timeout !== undefined) {
    const s = Number(values.timeout);
    if (!(s > 0)) return usageError(`--timeout must be a positive number of seconds, got '${values.timeout}'`);
    timeoutMs = s * 1000;
  }

  const entry = ZOO[name];
  const progress = values.quiet ? undefined : new Progress({ label: entry.file, unit: 'bytes', total: entry.size });
  const log = (m: string) => (progress ? progress.log(m) : undefined);
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once('SIGINT', onSigint);
  let started = false;
  try {
    const path = await fetchWeights(name, {
      cacheDir,
      url: values.url,
      sha256: values.sha256,
      force: values.force,
      keepPth: values['keep-pth'],
      timeoutMs,
      signal: abort.signal,
      log,
      onProgress: (done, total) => {
        started = true;
        progress?.update(done, total);
      },
    });
    if (started) progress?.finish();
    console.log(path);
    return 0;
  } catch (e) {
    progress?.fail();
    if (e instanceof DownloadError || e instanceof ChecksumError || e instanceof WeightFileError) {
      console.error(`perceptual weights: ${e.message}`);
      return 1;
    }
    throw e;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}
