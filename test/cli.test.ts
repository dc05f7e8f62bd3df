// The `perceptual` command as a user runs it: a separate process that must exit by itself.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const BIN = 'bin/perceptual.js';

describe('perceptual CLI', () => {
  it('info --json reports the adapter and a passing self-check, then exits', async () => {
    const { stdout } = await run(process.execPath, [BIN, 'info', '--json'], { timeout: 60_000 });
    const r = JSON.parse(stdout);
    expect(r.adapter).toHaveProperty('vendor');
    expect(r.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(r.selfCheck.ok).toBe(true);
    expect(r.selfCheck.maxRelErr).toBeLessThan(1e-4);
  });

  it('an unknown command exits 2 with the usage', async () => {
    const err = await run(process.execPath, [BIN, 'frobnicate'], { timeout: 60_000 }).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toContain("unknown command 'frobnicate'");
    expect(err.stderr).toContain('usage: perceptual');
  });
});
