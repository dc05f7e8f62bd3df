// `perceptual weights fetch <name>`: download an official pretrained loss network into the cache, verify it, convert
// it to safetensors and print the path. `perceptual weights list`: the known networks and whether they are cached.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DownloadError, defaultCacheDir, fetchWeights } from '../io/fetch.js';
import { ZOO, ZOO_NAMES, isZooName } from '../io/zoo.js';
import { UsageError, command } from './command.js';
import { Progress, formatBytes } from './progress.js';

const UNREACHABLE = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ENETUNREACH', 'EHOSTUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'UND_ERR_CONNECT_TIMEOUT']);

/** Whether a download failed for want of a network (no DNS, no route, no answer) rather than a bad file. */
function offline(e: unknown): boolean {
  for (let c = e; c; c = (c as { cause?: unknown }).cause) {
    if (UNREACHABLE.has((c as NodeJS.ErrnoException).code ?? '')) return true;
    if (c instanceof DownloadError && /^timed out: no response/.test(c.message)) return true;
  }
  return false;
}

export const weights = command({
  name: 'weights',
  summary: `download official pretrained loss networks (${ZOO_NAMES.join(', ')}) into the cache as safetensors`,
  synopsis: [`fetch <${ZOO_NAMES.join('|')}> [--cache-dir DIR] [--url URL] [--force] [--keep-pth]`, 'list [--cache-dir DIR]'],
  description: `fetch   downloads the official torchvision checkpoint, checks its sha256 (the prefix in the file name, as torch.hub
        does, and the full hash where known), keeps the convolutional trunk and writes <cache>/<name>.safetensors;
        prints its path. An interrupted download resumes on the next run.
list    the known networks, their source and whether they are in the cache.`,
  positionals: { name: 'SUBCOMMAND', max: 2 },
  options: {
    'cache-dir': {
      type: 'string',
      arg: 'DIR',
      help: 'cache folder (default: $PERCEPTUAL_CACHE_DIR, else $XDG_CACHE_HOME/perceptual-webgpu,\nelse ~/.cache/perceptual-webgpu)',
    },
    url: { type: 'string', arg: 'URL', help: 'download from this mirror instead of the official address (the hash is still checked)' },
    sha256: { type: 'string', arg: 'HEX', help: "expected sha256 (64 hex digits, or a prefix of at least 8) instead of the table's" },
    force: { type: 'boolean', help: 'download and convert again even if the .safetensors exists' },
    'keep-pth': { type: 'boolean', help: 'keep the verified .pth in the cache (reused by later runs)' },
    timeout: { type: 'number', arg: 'SEC', above: 0, default: 30, help: 'give up when no data arrives for SEC seconds' },
    quiet: { type: 'boolean', short: 'q', help: 'no progress output' },
  },
  async run(o, [sub, ...rest]) {
    const cacheDir = o['cache-dir'] ?? defaultCacheDir();
    if (sub === 'list') {
      if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'`);
      for (const n of ZOO_NAMES) {
        const e = ZOO[n];
        const path = join(cacheDir, `${n}.safetensors`);
        const size = e.size !== undefined ? ` (${formatBytes(e.size)} download)` : '';
        console.log(`${n.padEnd(14)} ${existsSync(path) ? path : 'not cached'}\n${''.padEnd(14)} ${e.description}; ${e.url}${size}`);
      }
      return 0;
    }
    if (sub !== 'fetch') throw new UsageError(`unknown subcommand '${sub}' (fetch or list)`);
    const name = rest[0];
    if (name === undefined) throw new UsageError('missing network name');
    if (!isZooName(name)) throw new UsageError(`unknown network '${name}' (known: ${ZOO_NAMES.join(', ')})`);
    if (o.sha256 !== undefined && !/^[0-9a-f]{8,64}$/i.test(o.sha256)) throw new UsageError(`--sha256 must be 8 to 64 hex digits, got '${o.sha256}'`);

    const entry = ZOO[name];
    const progress = o.quiet ? undefined : new Progress({ label: entry.file, unit: 'bytes', total: entry.size });
    const abort = new AbortController();
    const onSigint = () => abort.abort();
    process.once('SIGINT', onSigint);
    let started = false;
    try {
      const path = await fetchWeights(name, {
        cacheDir,
        url: o.url,
        sha256: o.sha256,
        force: o.force,
        keepPth: o['keep-pth'],
        timeoutMs: o.timeout * 1000,
        signal: abort.signal,
        log: (m) => progress?.log(m),
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
      if (!offline(e)) throw e;
      // Say how to do without the network: the file by hand (checked and converted here), a mirror, or a file given to training.
      const by = join(cacheDir, entry.file);
      throw new Error(
        `${(e as Error).message}: the network looks unreachable. Without it: download ${o.url ?? entry.url} elsewhere and put it at ${by}, ` +
          `then run 'perceptual weights fetch ${name}' again (it checks the hash and converts it); --url URL fetches from a mirror; ` +
          `the training commands also take a weight file directly (--loss-weights FILE).`,
      );
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
  },
});
