// The demo page's video panel in headless Chromium: a small WebM made by ffmpeg is chosen as a file, every frame is
// stylized (seeked one by one through <video>, frame rate from requestVideoFrameCallback), and the result is recorded
// with MediaRecorder to a downloadable WebM, which ffprobe then reads: the page's frame size, and frames in it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWeb } from '../../scripts/build-web.js';
import { serveWeb, type WebServer } from '../../scripts/serve-web.js';
import { launchChromium } from './chromium.js';

describe('demo page: a video file', () => {
  let server: WebServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'pw-web-video-'));

  beforeAll(async () => {
    await buildWeb();
    server = await serveWeb();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && pageErrors.push(m.text()));
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('stylizes every frame, records a WebM of the page size and offers it for download', async () => {
    // 5 frames of 40×30 at 5 fps, VP8 (what Chromium decodes everywhere).
    const clip = join(dir, 'clip.webm');
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=40x30:rate=5', '-frames:v', '5', '-c:v', 'libvpx', '-b:v', '200k', clip]);
    await page.goto(`${server.url}?size=40&example=0`);
    await page.waitForSelector('body[data-state="ready"], body[data-state="error"]', { timeout: 120_000 });
    await page.setInputFiles('#video-file', { name: 'clip.webm', mimeType: 'video/webm', buffer: readFileSync(clip) });
    await page.waitForSelector('body[data-video="done"], body[data-state="error"]', { timeout: 280_000 });
    console.log(`video panel: ${await page.textContent('#video-status')}`);
    expect(await page.getAttribute('body', 'data-state'), (await page.textContent('#status')) ?? '').not.toBe('error');
    expect(await page.getAttribute('body', 'data-video-frames')).toBe('5');
    expect(await page.textContent('#video-status')).toMatch(/5 frames stylized \(40×30, 5\.00 fps\)/);
    const bytes = await page.evaluate(async () => {
      const a = document.getElementById('video-download') as HTMLAnchorElement;
      return Array.from(new Uint8Array(await (await fetch(a.href)).arrayBuffer()));
    });
    const out = join(dir, 'recorded.webm');
    writeFileSync(out, Uint8Array.from(bytes));
    const [w, h, n] = execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=width,height,nb_read_frames', '-of', 'default=nw=1:nk=1', out], { encoding: 'utf8' }).trim().split('\n');
    console.log(`recorded: ${bytes.length} bytes, ${w}×${h}, ${n} frames`);
    expect([w, h]).toEqual(['40', '30']);
    expect(Number(n)).toBeGreaterThanOrEqual(5); // every frame pushed to the recorder (requestFrame)
    expect(pageErrors).toEqual([]);
  });
});
