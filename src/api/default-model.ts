// The style model that ships with the package, so `perceptual stylize` works out of the box. How it was
// trained (command, data, steps, time) is in the README and in the file's own metadata.
export const DEFAULT_MODEL = {
  name: 'four-styles-w16',
  /** Where the file lies in the package (a URL, so that it resolves in Node and in a browser bundle). */
  url: new URL('../../models/four-styles-w16.safetensors', import.meta.url),
};

/** The ×4 super-resolution model that ships with the package: `perceptual upscale` uses it unless given --model. */
export const DEFAULT_SR_MODEL = {
  name: 'sr-x4-pixel-w32',
  url: new URL('../../models/sr-x4-pixel-w32.safetensors', import.meta.url),
};
