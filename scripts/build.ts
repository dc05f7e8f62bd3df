// `npm run build` (also npm's `prepare`, so `npm ci`, a git install and `npm pack` run it): dist/ as the package
// ships it — the library as ESM JavaScript with .d.ts and source maps (tsc -p tsconfig.build.json: src/ → dist/),
// the browser bundles dist/web/perceptual.js + engine.js (scripts/build-web.ts), and dist/ts5/, the entries' types
// for TypeScript 5 (see below). dist/ is removed first, so a module deleted from src/ does not live on in the package.
import { execFileSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as esbuild from 'esbuild';
import { ROOT, libraryBuild } from './build-web.js';

/** The declaration files that package.json's exports name. */
const TYPE_ENTRIES = ['index', 'browser', 'engine', 'engine-browser'];

const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin/tsc');

await rm(join(ROOT, 'dist'), { recursive: true, force: true });
// Everything to stderr: `npm pack --json` runs this (prepare) and its stdout must stay JSON.
execFileSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: ['ignore', 2, 2] });
// TypeScript 6 and later declare WebGPU in their "dom" library, and @webgpu/types beside it would clash (duplicate
// identifiers), so dist/*.d.ts reference nothing. TypeScript 5 has no WebGPU types: the exports' `types@<6`
// condition sends it to these entries, which add @webgpu/types (a dependency of the package) first.
await mkdir(join(ROOT, 'dist/ts5'));
for (const e of TYPE_ENTRIES) {
  await writeFile(join(ROOT, `dist/ts5/${e}.d.ts`), `/// <reference types="@webgpu/types" />\nexport * from '../${e}.js';\n`);
}
try {
  // The maps keep file:line for stack traces but not the sources (1.9 MB of them), which the package does not ship.
  const r = await esbuild.build({ ...libraryBuild(), sourcesContent: false });
  const js = Object.entries(r.metafile!.outputs).filter(([p]) => p.endsWith('.js'));
  console.error(`dist/: tsc output; browser bundles ${js.map(([p, o]) => `${p.replace(/^dist\/web\//, '')} ${(o.bytes / 1024).toFixed(0)} KiB`).join(', ')}`);
} catch (e) {
  // esbuild's errors list every offending import (e.g. a Node-only module reaching the browser); no stack trace.
  for (const m of (e as { errors?: esbuild.Message[] }).errors ?? [{ text: String(e) } as esbuild.Message]) console.error(`error: ${m.text}`);
  process.exit(1);
}
