// Headless Chromium with WebGPU for the browser test: Debian's chromium driven by playwright-core (whose own
// browser download cannot run here). Without a GPU, WebGPU is SwiftShader's fallback adapter; drawing to a
// WebGPU canvas there also needs Chromium's Vulkan path (SwiftShader Vulkan) — without these three flags the
// canvas's swap chain has no shared-image backing and the device is lost on the first present.
import { chromium, type Browser } from 'playwright-core';
import { HEADLESS_CHROMIUM_FLAGS } from '../../src/gpu/device.js';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  // What the page's own message and the README name (src/gpu/device.ts): WebGPU on SwiftShader's Vulkan.
  ...HEADLESS_CHROMIUM_FLAGS.split(' '),
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // A fake camera, so the webcam path runs headless.
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
];

/** Playwright gives the browser a fresh temporary profile and removes it on close. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}
