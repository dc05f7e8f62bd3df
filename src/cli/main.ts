// `perceptual <command>`: the executable entry (bin/perceptual.js runs its compiled form). The commands and the
// top-level usage are in commands.ts, so tests run them in-process.
//
// The GPU driver stack (Dawn, the Vulkan loader, Mesa) writes notes such as "maxDynamicUniformBuffersPerPipelineLayout
// artificially reduced" from native code straight to file descriptor 2, where no JavaScript can catch them. So a
// command that may start the GPU runs in a child process whose descriptor 2 is a pipe this process reads and drops,
// while the child's own messages (process.stderr, console.error) go to descriptor 3: this process's stderr, the
// user's terminal (progress lines stay TTY-aware). `--verbose` (or PERCEPTUAL_VERBOSE=1) runs the command in place
// and shows everything. Signals: both processes are in one process group, so a terminal's Ctrl-C (or Ctrl-Z,
// a resize) reaches the command itself; a SIGINT sent to this process alone (a script's kill, when no terminal is
// attached) is passed on, as are SIGTERM and SIGHUP. The child's exit status (or signal) is this process's.
import { spawn } from 'node:child_process';
import { writeSync } from 'node:fs';
import { Writable } from 'node:stream';
import { isatty } from 'node:tty';

const CHILD = 'PERCEPTUAL_STDERR_FD';
const argv = process.argv.slice(2);

/** Whether to run the command in a child with the native stderr hidden: not for help, the version, commands that
 *  never start the GPU, --verbose, or Windows (no descriptor 3 for a terminal there). */
function hideNative(): boolean {
  if (process.env[CHILD] || process.env.PERCEPTUAL_VERBOSE === '1' || process.platform === 'win32') return false;
  const own = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv;
  const [name] = own;
  if (!name || name.startsWith('-') || ['help', 'weights', 'styles'].includes(name)) return false;
  return !own.some((a) => a === '--verbose' || a === '--help' || a === '-h');
}

/** Synchronous writes to a descriptor that is not a terminal (a pipe or file), as Node's own stderr writes are. */
class FdWriter extends Writable {
  constructor(readonly fd: number) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    try {
      for (let off = 0; off < chunk.length; ) {
        try {
          off += writeSync(this.fd, chunk, off);
        } catch (e) {
          // A non-blocking pipe that is full: wait a moment for the reader.
          if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
        }
      }
      done();
    } catch (e) {
      done(e as Error);
    }
  }
}

/** In the child: JavaScript's stderr becomes descriptor `fd` (the user's stderr); descriptor 2 stays native. */
async function redirectStderr(fd: number): Promise<void> {
  const { WriteStream } = await import('node:tty');
  const stream = isatty(fd) ? new WriteStream(fd) : new FdWriter(fd);
  Object.defineProperty(process, 'stderr', { configurable: true, enumerable: true, get: () => stream });
  // Node prints an uncaught error natively (to descriptor 2): print it where it is seen.
  process.on('uncaughtExceptionMonitor', (e) => void stream.write(`perceptual: ${(e as Error)?.stack ?? String(e)}\n`));
}

async function runInPlace(): Promise<void> {
  const fd = Number(process.env[CHILD]);
  if (fd) await redirectStderr(fd);
  const { cli } = await import('./commands.js');
  try {
    process.exitCode = await cli(argv);
  } catch (err) {
    // Commands report their own failures; this is a failure of the entry itself.
    console.error(`perceptual: ${(err as Error)?.stack ?? String(err)}`);
    process.exitCode = 1;
  }
}

function runHidingNative(): void {
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1], ...argv], {
    stdio: ['inherit', 'inherit', 'pipe', 2],
    env: { ...process.env, [CHILD]: '3' },
  });
  // The native notes are dropped; the last of them are shown if the child dies of a crash (a signal it did not get
  // from the user), where they may be the only explanation.
  let tail = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => void (tail = (tail + s).slice(-16384)));
  const pass = (sig: NodeJS.Signals) => () => void child.kill(sig);
  // From a terminal the command got its own Ctrl-C: passing this one on would make it two (a second stops at once).
  const terminal = [0, 1, 2].some((fd) => isatty(fd));
  const passed = { SIGINT: terminal ? () => {} : pass('SIGINT'), SIGTERM: pass('SIGTERM'), SIGHUP: pass('SIGHUP') } as const;
  for (const [sig, f] of Object.entries(passed)) process.on(sig, f);
  child.on('error', (e) => {
    console.error(`perceptual: cannot start the command: ${e.message}`);
    process.exitCode = 1;
  });
  child.on('close', (code, signal) => {
    for (const [sig, f] of Object.entries(passed)) process.off(sig, f);
    if (signal) {
      if (!['SIGINT', 'SIGTERM', 'SIGHUP'].includes(signal) && tail) process.stderr.write(tail);
      process.kill(process.pid, signal);
    } else process.exitCode = code ?? 1;
  });
}

if (hideNative()) runHidingNative();
else void runInPlace();
