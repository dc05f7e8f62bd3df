// The one convention every `perceptual` command follows. A command declares its options once (type, default,
// help text); from that declaration come the parser, the validation and the --help text. Bad usage (an
// unknown or malformed option, a missing option or argument) prints the message and the usage and returns 2;
// a runtime failure returns 1 with one line naming the command (and, in the message, the file or option).
// Commands return their exit code instead of exiting, so tests run them in-process.
import { parseArgs } from 'node:util';

interface OptionBase {
  help: string;
  /** The value's name in the help (`--model FILE`); defaults to the choices, or N / X / S by type. */
  arg?: string;
  short?: string;
  /** Bad usage when absent. */
  required?: boolean;
}

export type OptionSpec =
  | (OptionBase & { type: 'boolean'; default?: boolean })
  | (OptionBase & { type: 'string'; default?: string; choices?: readonly string[]; multiple?: boolean })
  /** A whole number, at least `min` and a multiple of `multipleOf` when given. */
  | (OptionBase & { type: 'int'; default?: number; min?: number; multipleOf?: number })
  /** A finite number, at least `min` / greater than `above` / at most `max` when given. */
  | (OptionBase & { type: 'number'; default?: number; min?: number; above?: number; max?: number });

export type Options = Record<string, OptionSpec>;

type ValueOf<S> = S extends { type: 'boolean' }
  ? boolean
  : S extends { type: 'int' | 'number' }
    ? number
    : S extends { choices: readonly (infer C extends string)[] }
      ? C
      : string;

/** The parsed values, typed from the declaration: defaulted and required options are never undefined. */
export type Values<O extends Options> = {
  -readonly [K in keyof O]: O[K] extends { multiple: true }
    ? ValueOf<O[K]>[] | undefined
    : O[K] extends { default: unknown } | { required: true }
      ? ValueOf<O[K]>
      : ValueOf<O[K]> | undefined;
};

export interface Positionals {
  /** As shown in the usage: `IN`, `DIR`, `IMAGE`. */
  name: string;
  /** Default 1. */
  min?: number;
  /** Default unlimited (`IN...` in the usage). */
  max?: number;
}

export interface CommandSpec<O extends Options> {
  name: string;
  /** One line, for `perceptual --help`. */
  summary: string;
  /** What the command does, shown under the usage line. */
  description: string;
  options: O;
  /** Arguments that are not options; none when absent. */
  positionals?: Positionals;
  /** Usage lines after `perceptual NAME` when the generated one cannot say it (alternatives, subcommands). */
  synopsis?: readonly string[];
  /** Text after the options. */
  epilog?: string;
  run(values: Values<O>, positionals: string[]): Promise<number>;
}

/** Bad usage found by a command itself (e.g. options that exclude each other): usage and exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface Command {
  (argv: string[]): Promise<number>;
  readonly spec: CommandSpec<Options>;
  /** The generated --help text. */
  readonly usage: string;
}

const HELP: OptionSpec = { type: 'boolean', short: 'h', help: 'this help' };
/** Every command takes it: the GPU driver's own messages (Dawn, Vulkan, Mesa) are hidden without it (main.ts). */
export const VERBOSE: OptionSpec = { type: 'boolean', help: "also show the GPU driver's own messages (Dawn, Vulkan)" };
const COMMON: Options = { help: HELP, verbose: VERBOSE };

function argName(o: OptionSpec): string {
  if (o.type === 'boolean') return '';
  if (o.arg) return o.arg;
  if (o.type === 'string' && o.choices) return o.choices.join('|');
  return o.type === 'int' ? 'N' : o.type === 'number' ? 'X' : 'S';
}

function flag(name: string, o: OptionSpec): string {
  const a = argName(o);
  return `${o.short ? `-${o.short}, ` : ''}--${name}${a ? ` ${a}` : ''}`;
}

function numberKind(o: OptionSpec & { type: 'int' | 'number' }): string {
  const noun = o.type === 'int' ? 'integer' : 'number';
  if (o.type === 'number' && o.max !== undefined) return `a number from ${o.min ?? o.above ?? '-∞'} to ${o.max}`;
  if (o.type === 'int' && o.multipleOf !== undefined) return `a multiple of ${o.multipleOf}${o.min !== undefined && o.min > o.multipleOf ? ` ≥ ${o.min}` : ''}`;
  if (o.type === 'number' && o.above === 0) return 'a positive number';
  if (o.type === 'number' && o.above !== undefined) return `a number above ${o.above}`;
  if (o.min === undefined) return `a${noun === 'integer' ? 'n' : ''} ${noun}`;
  if (o.min === 0) return `a non-negative ${noun}`;
  if (o.min === 1 && noun === 'integer') return 'a positive integer';
  return `a${noun === 'integer' ? 'n' : ''} ${noun} ≥ ${o.min}`;
}

/** 1e-6 rather than 0.000001. */
const showDefault = (v: string | number | boolean) => (typeof v === 'number' && v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential() : String(v));

function usageText<O extends Options>(spec: CommandSpec<O>): string {
  const entries = Object.entries(spec.options);
  const required = entries.filter(([, o]) => o.required).map(([k, o]) => `--${k} ${argName(o)}`.trim());
  const p = spec.positionals;
  const pos = p ? (p.max === 1 ? (p.min === 0 ? `[${p.name}]` : p.name) : `${p.name}...`) : '';
  const lines = spec.synopsis ?? [[...required, entries.length > required.length ? '[options]' : '', pos].filter(Boolean).join(' ')];
  const usage = lines.map((l, i) => `${i ? '       ' : 'usage: '}perceptual ${spec.name} ${l}`.trimEnd()).join('\n');
  const rows = [...entries, ...Object.entries(COMMON)].map(([k, o]) => {
    const dflt = o.default === undefined || o.default === false ? '' : ` (default ${showDefault(o.default)})`;
    return [flag(k, o), `${o.help}${dflt}${o.type === 'string' && o.multiple ? ' (repeatable)' : ''}`] as const;
  });
  const width = Math.min(32, Math.max(...rows.map(([f]) => f.length))) + 2;
  const table = rows.map(([f, h]) => {
    // A help text that spans lines keeps its own line breaks, indented under the first.
    const [first, ...rest] = h.split('\n');
    const head = f.length + 2 > width ? `  ${f}\n  ${''.padEnd(width)}${first}` : `  ${f.padEnd(width)}${first}`;
    return [head, ...rest.map((r) => `  ${''.padEnd(width)}${r}`)].join('\n');
  });
  return [usage, '', spec.description, '', 'options:', ...table, ...(spec.epilog ? ['', spec.epilog] : [])].join('\n');
}

function parseValue(name: string, o: OptionSpec, raw: string | boolean): string | number | boolean {
  if (typeof raw === 'boolean' || o.type === 'boolean') return raw;
  if (o.type === 'string') {
    if (o.choices && !o.choices.includes(raw)) throw new UsageError(`--${name} must be ${o.choices.join(' or ')}, got '${raw}'`);
    return raw;
  }
  const x = Number(raw);
  const ok =
    raw.trim() !== '' &&
    Number.isFinite(x) &&
    (o.type === 'number' || Number.isInteger(x)) &&
    (o.min === undefined || x >= o.min) &&
    (o.type === 'int' || o.above === undefined || x > o.above) &&
    (o.type === 'int' || o.max === undefined || x <= o.max) &&
    (o.type === 'number' || o.multipleOf === undefined || x % o.multipleOf === 0);
  if (!ok) throw new UsageError(`--${name} must be ${numberKind(o)}, got '${raw}'`);
  return x;
}

/** Parses and validates argv against the declaration; throws UsageError on bad usage. */
export function parseCommandLine<O extends Options>(spec: CommandSpec<O>, argv: string[]): { help: boolean; values: Values<O>; positionals: string[] } {
  const all: Options = { ...spec.options, ...COMMON };
  argv = joinNegativeValues(all, argv);
  const config = Object.fromEntries(
    Object.entries(all).map(([k, o]) => [
      k,
      { type: o.type === 'boolean' ? 'boolean' : 'string', multiple: o.type === 'string' && o.multiple === true, ...(o.short ? { short: o.short } : {}) },
    ]),
  ) as Record<string, { type: 'boolean' | 'string'; short?: string; multiple: boolean }>;
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: config, allowPositionals: true, strict: true });
  } catch (e) {
    // Node's messages name the option ("Unknown option '--x'", "Option '--out <value>' argument missing").
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument starting with a '-'.*$/s, ''));
  }
  if (parsed.values.help) return { help: true, values: {} as Values<O>, positionals: [] };
  const values: Record<string, unknown> = {};
  for (const [k, o] of Object.entries(spec.options)) {
    const raw = parsed.values[k] as string | boolean | (string | boolean)[] | undefined;
    if (raw === undefined) {
      if (o.required) throw new UsageError(`--${k} is required`);
      values[k] = o.default;
    } else values[k] = Array.isArray(raw) ? raw.map((r) => parseValue(k, o, r)) : parseValue(k, o, raw);
  }
  const p = spec.positionals;
  const n = parsed.positionals.length;
  if (!p && n) throw new UsageError(`unexpected argument '${parsed.positionals[0]}'`);
  if (p && n < (p.min ?? 1)) throw new UsageError(`missing ${p.name}${(p.min ?? 1) > 1 ? ` (at least ${p.min})` : ''}`);
  if (p?.max !== undefined && n > p.max) throw new UsageError(`unexpected argument '${parsed.positionals[p.max]}'`);
  return { help: false, values: values as Values<O>, positionals: parsed.positionals };
}

/** `--strength -1` as `--strength=-1` for numeric options, so that a negative value is judged by the option's own
 *  rule ("must be from 0 to 1") rather than refused by the parser as an ambiguous option. */
function joinNegativeValues(all: Options, argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') return [...out, ...argv.slice(i)];
    const o = a.startsWith('--') ? all[a.slice(2)] : undefined;
    const next = argv[i + 1];
    if (o && (o.type === 'int' || o.type === 'number') && next !== undefined && /^-(\d|\.\d|Infinity)/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** Library messages name API options ("pass lossWeights", "choose overwrite", "pass the arch option"); on the command
 *  line they name the flag when the command has one (`--loss-weights FILE`, `--overwrite`, `--arch`). */
export function flagWording(message: string, options: Options): string {
  return message.replace(/\b(pass|choose|set) (?:the )?([a-z][A-Za-z]*)(?: option)?\b/g, (all, verb: string, name: string) => {
    const flag = name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    const o = options[flag];
    if (!o) return all;
    const arg = argName(o);
    return `${verb} --${flag}${arg ? ` ${arg}` : ''}`;
  });
}

/** JavaScript's own error classes: a bug rather than a described failure, so their name is kept in the message. */
const BUILTIN_ERRORS = new Set(['TypeError', 'RangeError', 'ReferenceError', 'SyntaxError', 'EvalError', 'URIError', 'AggregateError']);

/** The message of a runtime failure (our errors describe themselves, naming the file, option or tensor). */
export function describeError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  // Node's file errors ("ENOENT: no such file or directory, open 'x'") as "'x': no such file or directory".
  const { path } = e as { path?: unknown };
  const m = /^E[A-Z]+: ([^,]+), \w+ '/.exec(e.message);
  if (typeof path === 'string' && m) return `'${path}': ${m[1]}`;
  return BUILTIN_ERRORS.has(e.name) ? `${e.name}: ${e.message}` : e.message;
}

/**
 * Declares a command. Adding an option is one entry in `options`, e.g.
 * `'loss-net': { type: 'string', choices: ['vgg16', 'vgg19'], default: 'vgg16', help: 'loss network' }`:
 * it is parsed, validated, typed in `run`'s values and listed in --help.
 */
export function command<const O extends Options>(spec: CommandSpec<O>): Command {
  const usage = usageText(spec);
  const prefix = `perceptual ${spec.name}`;
  const run = async (argv: string[]): Promise<number> => {
    try {
      const { help, values, positionals } = parseCommandLine(spec, argv);
      if (help) {
        console.log(usage);
        return 0;
      }
      return await spec.run(values, positionals);
    } catch (e) {
      if (e instanceof UsageError) {
        console.error(`${prefix}: ${e.message}\n\n${usage}`);
        return 2;
      }
      console.error(`${prefix}: ${flagWording(describeError(e), spec.options)}`);
      if (process.env.PERCEPTUAL_DEBUG === '1') console.error((e as Error)?.stack);
      return 1;
    }
  };
  return Object.assign(run, { spec: spec as unknown as CommandSpec<Options>, usage });
}
