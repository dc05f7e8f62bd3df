// `npm run test:browser`: the demo page in headless Chromium (playwright-core driving /usr/bin/chromium, or
// $CHROMIUM). Kept out of `npm test`, which must run where no browser is installed.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/browser/**/*.spec.ts'],
    // SwiftShader runs a 128-px frame in seconds, a 256-px one in half a minute.
    testTimeout: 300_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
