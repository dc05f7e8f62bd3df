// The one progress display of every long CLI operation (downloads, training, optimisation, evaluation, batches of
// images): label, done/total, percentage, rate, ETA and a detail such as the loss terms. On a TTY the line is
// redrawn in place with `\r` (at most every `redrawMs`); elsewhere (logs, CI, pipes) a plain line is written at
// the first update, the last one, and at most every `intervalMs` (or every `printEvery` units) between, so logs stay
// short. The clock is injectable so the text is testable.

export type ProgressUnit = 'bytes' | 'steps' | 'pixels';

export interface ProgressState {
  label: string;
  done: number;
  /** Unknown when undefined (e.g. a download without Content-Length). */
  total?: number;
  unit: ProgressUnit;
  /** Per second, in `unit`s; undefined until it can be measured. */
  rate?: number;
  /** Milliseconds since start. */
  elapsedMs: number;
  /** Free text after the numbers, e.g. the current loss terms. */
  detail?: string;
}

/** Decimal (SI) units, as download tools show them: 999 B, 1.5 kB, 12.3 MB, 1.21 GB. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${Math.round(n)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 999.95 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** Image pixels: 850 px, 12.3 kpx, 197 kpx, 4.2 Mpx, 1.21 Gpx. */
export function formatPixels(n: number): string {
  if (n < 1000) return `${Math.round(n)} px`;
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e5 ? 1 : 0)} kpx`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} Mpx`;
  return `${(n / 1e9).toFixed(2)} Gpx`;
}

/** Whole seconds as m:ss or h:mm:ss; `--:--` when unknown or absurd. */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0 || seconds >= 100 * 3600) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export function formatRate(rate: number | undefined, unit: ProgressUnit): string {
  if (rate === undefined || !Number.isFinite(rate)) return unit === 'bytes' ? '-- MB/s' : unit === 'pixels' ? '-- Mpx/s' : '-- it/s';
  if (unit === 'bytes') return `${formatBytes(rate)}/s`;
  if (unit === 'pixels') return `${formatPixels(rate)}/s`;
  return rate >= 100 ? `${rate.toFixed(0)} it/s` : rate >= 1 ? `${rate.toFixed(1)} it/s` : `${(1 / Math.max(rate, 1e-9)).toFixed(1)} s/it`;
}

/** Seconds left at `rate`, or undefined when it cannot be estimated. */
export function etaSeconds(s: Pick<ProgressState, 'done' | 'total' | 'rate'>): number | undefined {
  if (s.total === undefined || !s.rate || s.rate <= 0) return undefined;
  return Math.max(0, s.total - s.done) / s.rate;
}

function amount(n: number, unit: ProgressUnit): string {
  return unit === 'bytes' ? formatBytes(n) : unit === 'pixels' ? formatPixels(n) : String(n);
}

/** `label 45% 12.3 MB/27.3 MB 2.0 MB/s ETA 0:08`, with a `[====>    ]` bar when `barWidth` > 0 and the total is known. */
export function formatProgress(s: ProgressState, barWidth = 0): string {
  const parts = [s.label];
  if (s.total !== undefined && s.total > 0) {
    const frac = Math.min(1, Math.max(0, s.done / s.total));
    if (barWidth > 0) {
      const full = Math.floor(frac * barWidth);
      parts.push(`[${'='.repeat(full)}${full < barWidth ? '>' : ''}${' '.repeat(Math.max(0, barWidth - full - 1))}]`);
    }
    parts.push(`${(frac * 100).toFixed(0).padStart(3)}%`);
    parts.push(s.unit === 'steps' ? `${s.done}/${s.total}` : `${amount(s.done, s.unit)}/${amount(s.total, s.unit)}`);
  } else {
    parts.push(amount(s.done, s.unit));
  }
  parts.push(formatRate(s.rate, s.unit));
  if (s.total !== undefined) parts.push(`ETA ${formatDuration(etaSeconds(s))}`);
  return withDetail(parts.join(' '), s);
}

/** `step 120/1500 (8.0%) 2.8 s/it ETA 1:04:24 | content 9.8 style 0.36`: counted steps, for iterative work. */
export function formatCounter(s: ProgressState): string {
  if (s.total === undefined || s.total <= 0) return withDetail(`${s.label} ${s.done} ${formatRate(s.rate, s.unit)}`, s);
  const pct = ((100 * Math.min(s.done, s.total)) / s.total).toFixed(1);
  return withDetail(`${s.label} ${s.done}/${s.total} (${pct}%) ${formatRate(s.rate, s.unit)} ETA ${formatDuration(etaSeconds(s))}`, s);
}

function withDetail(line: string, s: ProgressState): string {
  return s.detail ? `${line} | ${s.detail}` : line;
}

/** The final line: `label 27.3 MB in 0:14 (2.0 MB/s)`, `label 5/5 in 0:03 (1.6 it/s)`. */
export function formatDone(s: ProgressState): string {
  const secs = s.elapsedMs / 1000;
  const rate = s.rate ?? (secs > 0 ? s.done / secs : undefined);
  const done = s.unit === 'steps' && s.total !== undefined ? `${s.done}/${s.total}` : amount(s.done, s.unit);
  return `${s.label} ${done} in ${formatDuration(secs)} (${formatRate(rate, s.unit)})`;
}

export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  label: string;
  total?: number;
  unit?: ProgressUnit;
  /** `bar` (default): `label [===>  ] 45% 12/27 …`; `counter`: `label 12/27 (44.4%) …` (see formatCounter). */
  style?: 'bar' | 'counter';
  /** Off a TTY: a line every `printEvery` units instead of every `intervalMs`. */
  printEvery?: number;
  /** Where to write: process.stderr by default (stdout stays for results). */
  stream?: ProgressStream;
  /** Redraw in place; defaults to stream.isTTY. */
  tty?: boolean;
  /** Milliseconds; injectable for tests. Defaults to performance.now. */
  now?: () => number;
  /** Minimum time between TTY redraws (default 100 ms). */
  redrawMs?: number;
  /** Minimum time between plain lines when not a TTY (default 10 s). */
  intervalMs?: number;
  /** Rate window: the rate is measured over about the last `windowMs` (default 5 s). */
  windowMs?: number;
}

/** One progress line. Call `update(done, total?)` as work advances and `finish()` or `fail()` at the end. */
export class Progress {
  readonly label: string;
  readonly unit: ProgressUnit;
  private readonly style: 'bar' | 'counter';
  private readonly printEvery?: number;
  private total?: number;
  private doneCount = 0;
  private detail?: string;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly redrawMs: number;
  private readonly intervalMs: number;
  private readonly windowMs: number;
  private readonly start: number;
  private samples: [number, number][] = []; // (time, done), oldest first
  private lastDraw = -Infinity;
  private drawn = false;
  private drawnDone = -1;
  private lastWidth = 0;
  private ended = false;

  constructor(o: ProgressOptions) {
    this.label = o.label;
    this.total = o.total;
    this.unit = o.unit ?? 'steps';
    this.style = o.style ?? 'bar';
    this.printEvery = o.printEvery;
    this.stream = o.stream ?? process.stderr;
    this.tty = o.tty ?? this.stream.isTTY === true;
    this.now = o.now ?? (() => performance.now());
    this.redrawMs = o.redrawMs ?? 100;
    this.intervalMs = o.intervalMs ?? 10_000;
    this.windowMs = o.windowMs ?? 5_000;
    this.start = this.now();
  }

  /** Units per second over the recent window; undefined until two samples at least 1 ms apart exist. */
  rate(): number | undefined {
    const s = this.samples;
    if (s.length < 2) return undefined;
    const [t0, d0] = s[0];
    const [t1, d1] = s[s.length - 1];
    return t1 - t0 >= 1 ? ((d1 - d0) * 1000) / (t1 - t0) : undefined;
  }

  state(): ProgressState {
    return { label: this.label, done: this.doneCount, total: this.total, unit: this.unit, rate: this.rate(), elapsedMs: this.now() - this.start, detail: this.detail };
  }

  /** `detail` replaces the text after the numbers (kept when omitted). */
  update(done: number, total?: number, detail?: string): void {
    if (this.ended) return;
    if (total !== undefined) this.total = total;
    if (detail !== undefined) this.detail = detail;
    const t = this.now();
    // A jump backwards (a restarted download) starts the rate window afresh.
    if (done < this.doneCount) this.samples = [];
    this.doneCount = done;
    this.samples.push([t, done]);
    // Keep the newest sample older than the window so the rate spans about windowMs.
    while (this.samples.length > 2 && t - this.samples[1][0] >= this.windowMs) this.samples.shift();
    if (this.samples.length > 256) this.samples.splice(1, this.samples.length - 256);
    // The last update is always shown, once.
    const last = this.total !== undefined && done >= this.total && this.drawnDone !== done;
    const due = this.tty || this.printEvery === undefined ? t - this.lastDraw >= (this.tty ? this.redrawMs : this.intervalMs) : done % this.printEvery === 0;
    if (!this.drawn || last || due) this.draw(t);
  }

  /** Runs `print` (which writes whole lines, to this stream or another on the same terminal) without breaking the
   * progress line: it is cleared first and redrawn after. */
  interrupt(print: () => void): void {
    if (this.tty && this.drawn && !this.ended) this.stream.write(`\r${' '.repeat(this.lastWidth)}\r`);
    print();
    if (this.tty && this.drawn && !this.ended) this.draw(this.now());
  }

  /** A message on its own line, without breaking the progress line. */
  log(message: string): void {
    this.interrupt(() => this.stream.write(`${message}\n`));
  }

  /** Ends the line with a summary (`formatDone`) or the given text. */
  finish(message?: string): void {
    if (this.ended) return;
    this.ended = true;
    const text = message ?? formatDone(this.state());
    this.stream.write(this.tty ? `\r${text.padEnd(this.lastWidth)}\n` : `${text}\n`);
  }

  /** Ends the line where it is (the caller reports the error). */
  fail(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.tty && this.drawn) this.stream.write('\n');
  }

  private draw(t: number): void {
    this.lastDraw = t;
    this.drawn = true;
    this.drawnDone = this.doneCount;
    const state = this.state();
    if (!this.tty) {
      this.stream.write(`${this.style === 'counter' ? formatCounter(state) : formatProgress(state)}\n`);
      return;
    }
    const cols = this.stream.columns || 80; // 0 where the terminal does not say
    let line: string;
    if (this.style === 'counter') line = formatCounter(state);
    else {
      const bar = Math.max(0, Math.min(30, cols - formatProgress(state).length - 4));
      line = formatProgress(state, bar >= 10 ? bar : 0);
    }
    if (line.length > cols - 1) line = line.slice(0, cols - 1);
    this.stream.write(`\r${line.padEnd(this.lastWidth)}`);
    this.lastWidth = line.length;
  }
}
