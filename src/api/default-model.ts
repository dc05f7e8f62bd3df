// The style model that ships with the package, so `perceptual stylize` works out of the box. How it was
// trained (command, data, steps, time) is in the README and in the file's own metadata.
export const DEFAULT_MODEL = {
  name: 'starry-night-paper-w16',
  /** Where the file lies in the package (a URL, so that it resolves in Node and in a browser bundle). */
  url: new URL('../../models/starry-night-paper-w16.safetensors', import.meta.url),
};
