// `npm run build:web`: the library's browser bundles (ESM: dist/web/perceptual.js from src/browser.ts, the
// `perceptual-webgpu/browser` export, and dist/web/engine.js from src/engine-browser.ts, the engine subpath's
// browser build, sharing their modules through chunks), the demo page's script (dist/web/demo.js, importing the
// library bundle) and the list of shipped models (dist/web/models.json, from models/*.safetensors). A Node-only
// import reaching a bundle fails the build. The bundles and chunks sit two levels below the package root, as
// src/api/ does, so DEFAULT_MODEL's URL (../../models/...) resolves to the shipped file when the package is
// served as it is laid out.
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { DEFAULT_MODEL } from '../src/api/default-model.js';
import { readSafetensors } from '../src/io/safetensors.js';
import type { ModelEntry } from '../src/web/demo.js';

export const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const OUT_DIR = join(ROOT, 'dist/web');
const MODELS_DIR = join(ROOT, 'models');
const LIBRARY_ENTRY = join(ROOT, 'src/browser.ts');
const ENGINE_ENTRY = join(ROOT, 'src/engine-browser.ts');

/** Modules that exist only in Node: its built-ins, and the native addons behind image files and Dawn. */
const NODE_ONLY = new Set([...builtinModules, 'sharp', 'webgpu']);

/** Fails the build on any import of a Node-only module, naming the importer (esbuild alone would bundle sharp's JS). */
export function nodeOnlyGuard(): esbuild.Plugin {
  return {
    name: 'node-only-guard',
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, (args) => {
        const bare = args.path.replace(/^node:/, '');
        const pkg = bare.startsWith('@') ? bare.split('/').slice(0, 2).join('/') : bare.split('/')[0];
        if (!args.path.startsWith('node:') && !NODE_ONLY.has(bare) && !NODE_ONLY.has(pkg)) return undefined;
        const from = args.importer ? relative(ROOT, args.importer) : 'the entry';
        return { errors: [{ text: `Node-only module "${args.path}" (imported by ${from}) must not reach the browser bundle` }] };
      });
    },
  };
}

const common: esbuild.BuildOptions = {
  absWorkingDir: ROOT,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  sourcemap: true,
  metafile: true,
  logLevel: 'silent',
  legalComments: 'none',
};

/** The library: src/browser.ts → perceptual.js and src/engine-browser.ts → engine.js. Code splitting puts what
 * they share in chunk-*.js, so a page that imports both has one Tensor class and one tape. */
export function libraryBuild(outdir = OUT_DIR): esbuild.BuildOptions {
  return { ...common, entryPoints: { perceptual: LIBRARY_ENTRY, engine: ENGINE_ENTRY }, splitting: true, outdir, plugins: [nodeOnlyGuard()] };
}

/** The demo script; its imports of the library entry load the library bundle instead of a second copy. */
export function demoBuild(outdir = OUT_DIR): esbuild.BuildOptions {
  const useLibraryBundle: esbuild.Plugin = {
    name: 'library-bundle',
    setup(build) {
      build.onResolve({ filter: /\/browser\.js$/ }, (args) =>
        resolve(args.resolveDir, args.path.replace(/\.js$/, '.ts')) === LIBRARY_ENTRY ? { path: './perceptual.js', external: true } : undefined,
      );
    },
  };
  return { ...common, entryPoints: { demo: join(ROOT, 'src/web/demo.ts') }, outdir, plugins: [useLibraryBundle, nodeOnlyGuard()] };
}

/** One entry per style model in models/*.safetensors (the SR model is not the page's), described from its
 *  metadata; DEFAULT_MODEL first. */
export async function modelManifest(outdir = OUT_DIR): Promise<ModelEntry[]> {
  const files = (await readdir(MODELS_DIR)).filter((f) => f.endsWith('.safetensors')).sort();
  const entries: ModelEntry[] = [];
  for (const f of files) {
    const path = join(MODELS_DIR, f);
    const { metadata } = readSafetensors(new Uint8Array(await readFile(path)), f);
    if (metadata.arch !== 'transformer-net') continue;
    const name = basename(f, '.safetensors');
    let description = [metadata.variant, metadata.norm && `${metadata.norm} norm`, metadata.width && `width ${metadata.width}`].filter(Boolean).join(', ');
    try {
      const t = JSON.parse(metadata.training ?? 'null') as { style?: string | string[]; steps?: number } | null;
      const styles = Array.isArray(t?.style) ? `${t.style.length} styles (${t.style.join(', ')})` : t?.style && `style ${t.style}`;
      if (styles) description += `; ${styles}, ${t!.steps} steps`;
    } catch {
      /* free-form metadata: the architecture alone describes it */
    }
    // The page's first look: the example stylized beforehand (scripts/make-previews.ts), when there is one.
    const preview = join(ROOT, 'web/previews', `${name}.png`);
    entries.push({
      name,
      url: relative(outdir, path).split('\\').join('/'),
      bytes: (await stat(path)).size,
      ...(name === DEFAULT_MODEL.name ? { default: true } : {}),
      description,
      ...(existsSync(preview) ? { preview: relative(outdir, preview).split('\\').join('/') } : {}),
    });
  }
  return entries.sort((a, b) => Number(!!b.default) - Number(!!a.default));
}

export interface WebBuild {
  outdir: string;
  files: { path: string; bytes: number }[];
}

export async function buildWeb(outdir = OUT_DIR): Promise<WebBuild> {
  await mkdir(outdir, { recursive: true });
  const results = await Promise.all([esbuild.build(libraryBuild(outdir)), esbuild.build(demoBuild(outdir))]);
  await writeFile(join(outdir, 'models.json'), JSON.stringify(await modelManifest(outdir), null, 2) + '\n');
  const files = results.flatMap((r) => Object.entries(r.metafile!.outputs).map(([p, o]) => ({ path: p, bytes: o.bytes })));
  files.push({ path: relative(ROOT, join(outdir, 'models.json')), bytes: (await stat(join(outdir, 'models.json'))).size });
  return { outdir, files };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    const { files } = await buildWeb();
    for (const f of files) console.log(`${f.path}  ${(f.bytes / 1024).toFixed(1)} KiB`);
  } catch (e) {
    // esbuild's errors list every offending import; print them without a stack trace.
    const errors = (e as { errors?: esbuild.Message[] }).errors;
    if (!errors) throw e;
    for (const m of errors) console.error(`error: ${m.text}${m.location ? ` (${m.location.file}:${m.location.line})` : ''}`);
    process.exit(1);
  }
}
