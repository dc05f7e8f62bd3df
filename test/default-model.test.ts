// The embedded default model: the README's main command works out of the box, with no download.
import { existsSync, mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MODEL } from '../src/api/default-model.js';
import { stylize } from '../src/cli/stylize.js';
import { readImage } from '../src/io/image-node.js';
import { readSafetensors } from '../src/io/safetensors.js';

describe('embedded default model', () => {
  const path = fileURLToPath(DEFAULT_MODEL.url);

  it('ships in the repository and records how it was trained', async () => {
    expect(existsSync(path), `${path} is missing`).toBe(true);
    const { metadata } = readSafetensors(new Uint8Array(await readFile(path)));
    expect(metadata.arch).toBe('transformer-net');
    const training = JSON.parse(metadata.training);
    expect(training.steps).toBeGreaterThan(0);
    // A multi-style model: each style's image, and what `perceptual styles` shows of it.
    const names = ['starry_night', 'great_wave_crop', 'the_scream', 'composition_vii'];
    expect(training.style).toEqual(names);
    const info = JSON.parse(metadata.style_info);
    expect(info.map((s: { name: string }) => s.name)).toEqual(names);
    for (const s of info) expect(Object.keys(s)).toEqual(expect.arrayContaining(['title', 'artist', 'source', 'licence']));
  });

  it("the README's main command stylizes the example image, keeping its size", async () => {
    const out = mkdtempSync(join(tmpdir(), 'pw-default-'));
    expect(await stylize(['examples/village.png', '--out', out])).toBe(0);
    const [a, b] = [await readImage('examples/village.png'), await readImage(join(out, 'village.png'))];
    expect([b.width, b.height]).toEqual([a.width, a.height]);
    // Stylized, not copied: pixels moved substantially on average.
    let diff = 0;
    for (let i = 0; i < a.data.length; i++) diff += Math.abs(a.data[i] - b.data[i]);
    expect(diff / a.data.length).toBeGreaterThan(10);
  });
});
