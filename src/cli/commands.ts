// The `perceptual` commands, each declared in its own file with the helper of command.ts, and the top level:
// `perceptual <command> [options]`, `--help`, `--version`. Adding a command is one entry in COMMANDS.
import { readFileSync } from 'node:fs';
import { classify } from './classify.js';
import type { Command } from './command.js';
import { evalSr } from './eval-sr.js';
import { gatys } from './gatys.js';
import { info } from './info.js';
import { stylize } from './stylize.js';
import { stylizeVideoCli } from './stylize-video.js';
import { styles } from './styles.js';
import { trainSrCli } from './train-sr.js';
import { trainStyleCli } from './train-style.js';
import { upscale } from './upscale.js';
import { weights } from './weights.js';

/** In the order `perceptual --help` lists them. */
export const COMMANDS: readonly Command[] = [info, classify, trainStyleCli, stylize, stylizeVideoCli, styles, evalSr, trainSrCli, upscale, gatys, weights];

/** The package's version: package.json lies two levels up from both src/cli and dist/cli. */
export function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

export function usage(): string {
  const rows = COMMANDS.map((c) => `  ${c.spec.name.padEnd(14)} ${c.spec.summary}`);
  return [
    'usage: perceptual <command> [options]',
    '       perceptual --version',
    '',
    'commands:',
    ...rows,
    '',
    "Run 'perceptual <command> --help' for a command's options.",
  ].join('\n');
}

/** Runs the command line; returns the exit code (0 done, 1 failed, 2 bad usage). */
export async function cli(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    // `perceptual help stylize` is `perceptual stylize --help`.
    const c = COMMANDS.find((k) => name === 'help' && k.spec.name === rest[0]);
    console.log(c ? c.usage : usage());
    return 0;
  }
  if (name === '--version' || name === '-V') {
    console.log(version());
    return 0;
  }
  const c = COMMANDS.find((k) => k.spec.name === name);
  if (!c) {
    console.error(`perceptual: ${name === undefined ? 'missing command' : name.startsWith('-') ? `unknown option '${name}'` : `unknown command '${name}'`}\n\n${usage()}`);
    return 2;
  }
  return c(rest);
}
