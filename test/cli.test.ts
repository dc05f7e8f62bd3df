// The `perceptual` command line: one convention for every command (generated --help exits 0; an unknown or
// malformed option or a missing argument prints the usage and exits 2; a runtime failure exits 1 with one line),
// the declaration helper behind it, the shared progress display, and the command as a separate process that must
// exit by itself. The compiled bin (dist/) is exercised by test/packaging.test.ts; here the TypeScript runs.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it, vi } from 'vitest';
import { UsageError, command, flagWording, parseCommandLine, type CommandSpec, type Options } from '../src/cli/command.js';
import { COMMANDS, cli, usage } from '../src/cli/commands.js';
import { Progress, formatCounter } from '../src/cli/progress.js';

const execFileP = promisify(execFile);
/** The CLI's source through tsx, as a user's process: it must exit by itself. */
const spawnCli = (args: string[]) => execFileP(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { timeout: 60_000 });
const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

/** Runs the command line in-process, capturing what it prints. */
async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void (out += `${a.join(' ')}\n`));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void (err += `${a.join(' ')}\n`));
  try {
    return { code: await cli(argv), out, err };
  } finally {
    vi.restoreAllMocks();
  }
}

/** Per command: arguments that lack something it needs (an option, an argument, a subcommand's argument). */
const MISSING: Record<string, { argv: string[]; says: RegExp }> = {
  info: { argv: ['extra'], says: /unexpected argument 'extra'/ },
  classify: { argv: [], says: /missing IMAGE/ },
  'train-style': { argv: ['--data', 'd', '--out', 'o'], says: /--style is required/ },
  stylize: { argv: ['--out', 'o'], says: /missing IN/ },
  styles: { argv: ['extra'], says: /unexpected argument 'extra'/ },
  'stylize-video': { argv: ['in.mp4'], says: /--out is required/ },
  'eval-sr': { argv: ['--bicubic', '--scale', '4'], says: /missing DIR/ },
  'train-sr': { argv: ['--scale', '4', '--data', 'd', '--out', 'o'], says: /--loss is required/ },
  upscale: { argv: ['--model', 'm.safetensors', 'in.png'], says: /--out is required/ },
  gatys: { argv: ['--content', 'c.png', '--out', 'o.png'], says: /--style is required/ },
  weights: { argv: ['fetch'], says: /missing network name/ },
};

describe('every command follows the convention', () => {
  it('the top level: --help and --version exit 0; no command or an unknown one prints the usage and exits 2', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    for (const c of COMMANDS) expect(help.out).toContain(`  ${c.spec.name.padEnd(14)} ${c.spec.summary}`);
    expect(await run(['--version'])).toEqual({ code: 0, out: `${VERSION}\n`, err: '' });
    expect((await run(['help', 'stylize'])).out).toContain('usage: perceptual stylize');
    for (const argv of [[], ['frobnicate'], ['--frobnicate']]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err).toContain(usage());
    }
  });

  it('is registered for every command in src/cli, with a case of missing input here', () => {
    expect(COMMANDS.map((c) => c.spec.name).sort()).toEqual(Object.keys(MISSING).sort());
  });

  for (const c of COMMANDS) {
    const name = c.spec.name;
    it(`${name}: --help exits 0 with the generated usage; bad usage exits 2 with it`, async () => {
      const help = await run([name, '--help']);
      expect(help).toEqual({ code: 0, out: `${c.usage}\n`, err: '' });
      expect(c.usage).toMatch(new RegExp(`^usage: perceptual ${name}`));
      for (const k of Object.keys(c.spec.options)) expect(c.usage).toContain(`--${k}`);
      expect((await run([name, '-h'])).code).toBe(0);

      const cases: [string[], RegExp][] = [
        [['--no-such-option'], /Unknown option '--no-such-option'/],
        [MISSING[name].argv, MISSING[name].says],
      ];
      // An option given without its value.
      const valued = Object.entries(c.spec.options).find(([, o]) => o.type !== 'boolean');
      if (valued) cases.push([[`--${valued[0]}`], new RegExp(`Option '--${valued[0]} <value>' argument missing`)]);
      for (const [argv, says] of cases) {
        const r = await run([name, ...argv]);
        expect(r.code, argv.join(' ')).toBe(2);
        expect(r.err).toMatch(says);
        expect(r.err).toContain(`perceptual ${name}: `);
        expect(r.err.trimEnd().endsWith(c.usage), 'the usage follows the message').toBe(true);
        expect(r.out).toBe('');
      }
    });
  }

  it('malformed values exit 2 and name the option', async () => {
    const cases: [string[], string][] = [
      [['stylize', 'x.png', '--out', 'o', '--strength', 'strong'], "--strength must be a number from 0 to 1, got 'strong'"],
      [['stylize', 'x.png', '--out', 'o', '--strength', '-0.5'], "--strength must be a number from 0 to 1, got '-0.5'"],
      [['stylize', 'x.png', '--out', 'o', '--tile', '30'], "--tile must be a multiple of 4, got '30'"],
      [['stylize', 'x.png', '--out', 'o', '--format', 'gif'], "--format must be png or jpg or jpeg, got 'gif'"],
      [['train-style', '--style', 's', '--data', 'd', '--out', 'o', '--width', '1.5'], "--width must be a positive integer, got '1.5'"],
      [['train-style', '--style', 's', '--data', 'd', '--out', 'o', '--arch', 'resnet'], "--arch must be paper or pytorch-examples, got 'resnet'"],
      [['train-sr', '--scale', '3', '--loss', 'feat', '--data', 'd', '--out', 'o'], "--scale must be 4 or 8, got '3'"],
      [['gatys', '--content', 'c', '--style', 's', '--out', 'o', '--lr', '0'], "--lr must be a positive number, got '0'"],
      [['info', '--json=yes'], "Option '--json' does not take an argument"],
      [['weights', 'fetch', 'vgg16', '--timeout', '-'], "--timeout must be a positive number, got '-'"],
    ];
    for (const [argv, says] of cases) {
      const r = await run(argv);
      expect([r.code, r.err.split('\n')[0]], argv.join(' ')).toEqual([2, `perceptual ${argv[0]}: ${says}`]);
    }
  });

  it('a runtime failure exits 1 with one line naming the file and the flag', async () => {
    const r = await run(['upscale', '--model', 'no-such-model.safetensors', 'in.png', '--out', 'o']);
    expect(r).toEqual({ code: 1, out: '', err: "perceptual upscale: --model 'no-such-model.safetensors': no such file\n" });
  });

  it('every command takes --verbose (the GPU driver’s own messages; main.ts hides them otherwise)', async () => {
    for (const c of COMMANDS) expect(c.usage, c.spec.name).toContain("--verbose");
    expect((await run(['--version'])).code).toBe(0);
    expect((await run(['info', '--verbose', '--bogus'])).err).toContain("Unknown option '--bogus'");
  });
});

describe('the declaration helper', () => {
  const spec = {
    name: 'demo',
    summary: 'a command for this test',
    description: 'Does nothing.',
    positionals: { name: 'IN' },
    options: {
      out: { type: 'string', arg: 'DIR', required: true, help: 'output folder' },
      size: { type: 'int', min: 1, default: 256, help: 'side' },
      lr: { type: 'number', above: 0, help: 'step' },
      net: { type: 'string', choices: ['vgg16', 'vgg19'], default: 'vgg16', help: 'loss network' },
      sample: { type: 'string', multiple: true, help: 'an image' },
      quiet: { type: 'boolean', short: 'q', help: 'say less' },
    },
    run: async () => 0,
  } as const satisfies CommandSpec<Options>;

  it('parses, types and defaults the declared options', () => {
    const r = parseCommandLine(spec, ['a.png', '--out', 'o', '--sample', 'x', '--sample', 'y', '-q', 'b.png', '--lr', '1e-3']);
    expect(r).toEqual({
      help: false,
      values: { out: 'o', size: 256, lr: 0.001, net: 'vgg16', sample: ['x', 'y'], quiet: true },
      positionals: ['a.png', 'b.png'],
    });
    // The types follow the declaration: a choice is its union, a defaulted number is never undefined.
    const net: 'vgg16' | 'vgg19' = r.values.net;
    const size: number = r.values.size;
    expect([net, size]).toEqual(['vgg16', 256]);
  });

  it('generates the usage: required options first, defaults, repeatable options, -h', () => {
    const c = command(spec);
    expect(c.usage.split('\n')).toEqual([
      'usage: perceptual demo --out DIR [options] IN...',
      '',
      'Does nothing.',
      '',
      'options:',
      '  --out DIR          output folder',
      '  --size N           side (default 256)',
      '  --lr X             step',
      '  --net vgg16|vgg19  loss network (default vgg16)',
      '  --sample S         an image (repeatable)',
      '  -q, --quiet        say less',
      '  -h, --help         this help',
      "  --verbose          also show the GPU driver's own messages (Dawn, Vulkan)",
    ]);
  });

  it('bad usage is a UsageError naming the option', () => {
    const bad = (argv: string[]) => () => parseCommandLine(spec, argv);
    expect(bad(['--out', 'o'])).toThrow(new UsageError('missing IN'));
    expect(bad(['a', '--out', 'o', '--size', '0'])).toThrow("--size must be a positive integer, got '0'");
    expect(bad(['a', '--out', 'o', '--size', ''])).toThrow("--size must be a positive integer, got ''");
    // A negative number is a value, judged by the option's rule (not "argument is ambiguous").
    expect(bad(['a', '--out', 'o', '--lr', '-1'])).toThrow("--lr must be a positive number, got '-1'");
    expect(bad(['a', '--out', 'o', '--lr=-1'])).toThrow("--lr must be a positive number, got '-1'");
    expect(bad(['a', '--out', 'o', '--net', 'alexnet'])).toThrow("--net must be vgg16 or vgg19, got 'alexnet'");
    expect(bad(['a'])).toThrow('--out is required');
  });
});

describe('library messages on the command line', () => {
  it('name the flag the command has instead of the API option', () => {
    const options: Options = { 'loss-weights': { type: 'string', arg: 'FILE', help: '' }, overwrite: { type: 'boolean', help: '' }, arch: { type: 'string', choices: ['paper', 'pytorch-examples'], help: '' } };
    expect(flagWording("run 'perceptual weights fetch vgg16' or pass lossWeights", options)).toBe("run 'perceptual weights fetch vgg16' or pass --loss-weights FILE");
    expect(flagWording('resume it, or choose overwrite to start over', options)).toBe('resume it, or choose --overwrite to start over');
    expect(flagWording('in __metadata__.variant; pass the arch option', options)).toBe('in __metadata__.variant; pass --arch paper|pytorch-examples');
    // Without such a flag the words stay.
    expect(flagWording('pass the preprocess option', options)).toBe('pass the preprocess option');
  });
});

describe('the progress display', () => {
  it('counter style with a detail; every N units off a terminal, plus the first and the last', () => {
    let t = 0;
    let text = '';
    const stream = { write: (s: string) => void (text += s), isTTY: false };
    const p = new Progress({ label: 'iter', style: 'counter', total: 4, printEvery: 2, stream, now: () => t });
    for (let i = 1; i <= 4; i++) {
      t = i * 500;
      p.update(i, 4, `loss ${10 - i}`);
    }
    expect(text.split('\n').filter(Boolean)).toEqual([
      'iter 1/4 (25.0%) -- it/s ETA --:-- | loss 9',
      'iter 2/4 (50.0%) 2.0 it/s ETA 0:01 | loss 8',
      'iter 4/4 (100.0%) 2.0 it/s ETA 0:00 | loss 6',
    ]);
    expect(formatCounter({ label: 'step', done: 3, unit: 'steps', elapsedMs: 0 })).toBe('step 3 -- it/s');
  });

  it('lines printed while it runs on a terminal do not break it: cleared first, redrawn after', () => {
    let text = '';
    const tty = { write: (s: string) => void (text += s), isTTY: true, columns: 80 };
    const p = new Progress({ label: 'stylize', total: 2, stream: tty, now: () => 0 });
    p.update(1);
    const drawn = text;
    text = '';
    p.interrupt(() => void (text += 'a.png → out/a.png\n'));
    expect(text.startsWith(`\r${' '.repeat(drawn.length - 1)}\ra.png → out/a.png\n\r`)).toBe(true);
    p.finish('done');
  });
});

describe('the perceptual process', () => {
  it('info --json reports the adapter and a passing self-check, then exits', async () => {
    const { stdout } = await spawnCli(['info', '--json']);
    const r = JSON.parse(stdout);
    expect(r.adapter).toHaveProperty('vendor');
    expect(r.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(r.selfCheck.ok).toBe(true);
    expect(r.selfCheck.maxRelErr).toBeLessThan(1e-4);
  });

  it('exit codes: 0 --version, 2 bad usage with the usage, 1 a runtime failure in one line', async () => {
    expect((await spawnCli(['--version'])).stdout).toBe(`${VERSION}\n`);
    const unknown = await spawnCli(['frobnicate']).catch((e) => e);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
    expect(unknown.stderr).toContain('usage: perceptual');
    const bad = await spawnCli(['stylize', 'x.png', '--out', 'o', '--bogus']).catch((e) => e);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("perceptual stylize: Unknown option '--bogus'\n\nusage: perceptual stylize");
    const failed = await spawnCli(['stylize', 'examples/village.png', '--out', join(tmpdir(), 'pw-cli-out'), '--model', 'no-such.safetensors']).catch((e) => e);
    expect(failed.code).toBe(1);
    expect(failed.stderr.split('\n').filter((l: string) => l.startsWith('perceptual'))).toEqual(["perceptual stylize: --model 'no-such.safetensors': no such file"]);
  });
});
