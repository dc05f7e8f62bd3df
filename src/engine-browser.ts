// `perceptual-webgpu/engine` in a browser (dist/web/engine.js): everything browser-safe (core.ts) and the browser
// product API. It shares its modules with dist/web/perceptual.js (one Tensor class, one tape), so a page may
// import both.
export * from './core.js';
export * from './browser.js';
