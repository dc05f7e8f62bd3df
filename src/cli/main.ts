// `perceptual <command>`: the executable entry (bin/perceptual.js runs its compiled form). The commands and the
// top-level usage are in commands.ts, so tests run them in-process.
import { cli } from './commands.js';

cli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // Commands report their own failures; this is a failure of the entry itself.
    console.error(`perceptual: ${(err as Error)?.stack ?? String(err)}`);
    process.exitCode = 1;
  },
);
