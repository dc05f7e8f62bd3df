#!/usr/bin/env node
// The `perceptual` command: the compiled CLI in dist/. `npm run build` writes it; npm's `prepare` runs that on
// `npm ci`/`npm install` in a checkout, on git installs and before packing, so an installed package has it.
// While changing src/cli, `npm run perceptual -- <command> ...` runs the TypeScript directly.
try {
  await import('../dist/cli/main.js');
} catch (e) {
  // Only dist/ missing as a whole gets the hint; any other failure is reported as it is.
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' || !String(e.url).endsWith('/dist/cli/main.js')) throw e;
  console.error("perceptual: dist/ is missing; run 'npm run build' (npm ci and npm install do it)");
  process.exitCode = 1;
}
