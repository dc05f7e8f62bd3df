// Loss curves as a self-contained SVG string (no dependency): one <path class="series"> per loss term, a log-scale
// (or linear) y axis with ticks and grid, a step axis, and a legend. Long runs are thinned to at most `maxPoints`
// points per curve by averaging consecutive points (in log space on a log axis), which also smooths the noise.

export interface LossRecord {
  step: number;
  [term: string]: number;
}

export interface PlotSeries {
  name: string;
  /** [x, y] pairs, x increasing. */
  points: [number, number][];
}

export interface PlotOptions {
  width?: number;
  height?: number;
  title?: string;
  /** Logarithmic y axis (default true); values <= 0 are then left out. */
  logY?: boolean;
  /** Points per curve after thinning (default 1500). */
  maxPoints?: number;
  xLabel?: string;
  yLabel?: string;
}

/** Fields of a loss-log line that are not loss terms. */
export const NON_TERM_FIELDS = new Set(['step', 'time', 'lr', 'epoch']);

/** Parses JSON Lines of `{step, time, ...terms}`; blank and unparsable lines (a torn last line) are skipped. */
export function parseLossLog(text: string): LossRecord[] {
  const out: LossRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as LossRecord;
      if (r && typeof r === 'object' && Number.isFinite(r.step)) out.push(r);
    } catch {
      /* a partial line from an interrupted write */
    }
  }
  return out;
}

/** One series per loss term (every numeric field except step/time/lr/epoch), in order of first appearance. */
export function lossSeries(records: readonly LossRecord[]): PlotSeries[] {
  const by = new Map<string, [number, number][]>();
  for (const r of records) {
    for (const [k, v] of Object.entries(r)) {
      if (NON_TERM_FIELDS.has(k) || typeof v !== 'number') continue;
      let s = by.get(k);
      if (!s) by.set(k, (s = []));
      s.push([r.step, v]);
    }
  }
  return [...by].map(([name, points]) => ({ name, points }));
}

/** The SVG of a loss log (see parseLossLog): one curve per term. */
export function lossPlotSvg(records: readonly LossRecord[], opts: PlotOptions = {}): string {
  return plotSvg(lossSeries(records), { title: 'training loss', xLabel: 'step', yLabel: 'loss', ...opts });
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const num = (v: number): string => String(Math.round(v * 100) / 100);

/** A tick label: plain for moderate magnitudes, 1e-6 style otherwise. */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e5) return String(Number(v.toPrecision(6)));
  const [m, e] = v.toExponential().split('e');
  const mant = Number(Number(m).toPrecision(3));
  return `${mant === 1 ? '' : `${mant}×`}1e${Number(e)}`;
}

/** "Nice" linear ticks (1, 2, 5 × 10^k steps) covering [lo, hi]. */
function linearTicks(lo: number, hi: number, target = 6): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / target;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * p).find((s) => s >= raw) ?? 10 * p;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** Log ticks: decades, plus 2 and 5 when the range spans few decades. */
function logTicks(lo: number, hi: number): number[] {
  const d0 = Math.floor(Math.log10(lo));
  const d1 = Math.ceil(Math.log10(hi));
  const mults = d1 - d0 <= 2 ? [1, 2, 5] : [1];
  const out: number[] = [];
  for (let d = d0; d <= d1; d++) for (const m of mults) out.push(Number((m * 10 ** d).toPrecision(12)));
  const inside = out.filter((v) => v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9));
  return inside.length >= 2 ? inside : out.filter((v) => v >= lo / 10 && v <= hi * 10);
}

/** Averages runs of consecutive points so at most `max` remain (y in the plot's space). */
function thin(points: [number, number][], max: number): [number, number][] {
  if (points.length <= max) return points;
  const out: [number, number][] = [];
  const per = points.length / max;
  for (let b = 0; b < max; b++) {
    const i0 = Math.floor(b * per);
    const i1 = Math.max(i0 + 1, Math.floor((b + 1) * per));
    let sx = 0;
    let sy = 0;
    for (let i = i0; i < i1; i++) {
      sx += points[i][0];
      sy += points[i][1];
    }
    out.push([sx / (i1 - i0), sy / (i1 - i0)]);
  }
  return out;
}

/** A line chart of the series as an SVG document string. */
export function plotSvg(series: readonly PlotSeries[], opts: PlotOptions = {}): string {
  const W = opts.width ?? 800;
  const H = opts.height ?? 450;
  const logY = opts.logY ?? true;
  const maxPoints = opts.maxPoints ?? 1500;
  const m = { left: 72, right: 20, top: opts.title ? 34 : 16, bottom: 48 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const ty = (y: number) => (logY ? Math.log10(y) : y);
  // Curves in plot space: [x, ty(y)], with gaps (NaN) where a value cannot be drawn.
  const curves = series.map((s) => {
    const pts = s.points.filter(([x]) => Number.isFinite(x)).map(([x, y]): [number, number] => [x, Number.isFinite(y) && (!logY || y > 0) ? ty(y) : NaN]);
    const segments: [number, number][][] = [[]];
    for (const p of pts) {
      if (Number.isNaN(p[1])) {
        if (segments.at(-1)!.length) segments.push([]);
      } else segments.at(-1)!.push(p);
    }
    const total = pts.length || 1;
    return segments.filter((g) => g.length).map((g) => thin(g, Math.max(2, Math.round((maxPoints * g.length) / total))));
  });
  const all = curves.flat(2);
  let [x0, x1] = all.length ? [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))] : [0, 1];
  let [y0, y1] = all.length ? [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))] : [0, 1];
  if (x1 <= x0) [x0, x1] = [x0 - 0.5, x0 + 0.5];
  if (y1 <= y0) [y0, y1] = logY ? [y0 - 0.5, y0 + 0.5] : [y0 - Math.max(Math.abs(y0) * 0.1, 0.5), y0 + Math.max(Math.abs(y0) * 0.1, 0.5)];
  const pad = (y1 - y0) * 0.04;
  y0 -= pad;
  y1 += pad;
  const sx = (x: number) => m.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => m.top + ph - ((y - y0) / (y1 - y0)) * ph;

  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  o.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="white"/>`);
  if (opts.title) o.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(opts.title)}</text>`);
  // Grid and ticks.
  const yt = logY ? logTicks(10 ** y0, 10 ** y1) : linearTicks(y0, y1);
  for (const v of yt) {
    const y = sy(ty(v));
    if (y < m.top - 0.5 || y > m.top + ph + 0.5) continue;
    o.push(`<line x1="${m.left}" y1="${num(y)}" x2="${m.left + pw}" y2="${num(y)}" stroke="#e5e5e5"/>`);
    o.push(`<text x="${m.left - 6}" y="${num(y + 4)}" text-anchor="end">${esc(formatTick(v))}</text>`);
  }
  for (const v of linearTicks(x0, x1)) {
    const x = sx(v);
    o.push(`<line x1="${num(x)}" y1="${m.top + ph}" x2="${num(x)}" y2="${m.top + ph + 5}" stroke="black"/>`);
    o.push(`<text x="${num(x)}" y="${m.top + ph + 18}" text-anchor="middle">${esc(formatTick(v))}</text>`);
  }
  // Axes.
  o.push(`<line x1="${m.left}" y1="${m.top + ph}" x2="${m.left + pw}" y2="${m.top + ph}" stroke="black"/>`);
  o.push(`<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + ph}" stroke="black"/>`);
  if (opts.xLabel) o.push(`<text x="${m.left + pw / 2}" y="${H - 8}" text-anchor="middle">${esc(opts.xLabel)}</text>`);
  if (opts.yLabel) {
    const t = `${opts.yLabel}${logY ? ' (log scale)' : ''}`;
    o.push(`<text x="14" y="${m.top + ph / 2}" text-anchor="middle" transform="rotate(-90 14 ${m.top + ph / 2})">${esc(t)}</text>`);
  }
  if (!all.length) o.push(`<text x="${m.left + pw / 2}" y="${m.top + ph / 2}" text-anchor="middle" fill="#888">no data</text>`);
  // Curves: one path per series (a path with several sub-paths where values are missing).
  series.forEach((s, i) => {
    const d = curves[i].map((g) => g.map((p, k) => `${k ? 'L' : 'M'}${num(sx(p[0]))} ${num(sy(p[1]))}`).join('')).join('');
    o.push(`<path class="series" data-term="${esc(s.name)}" d="${d}" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.5"/>`);
  });
  // Legend (top right).
  if (series.length) {
    const lw = Math.max(...series.map((s) => s.name.length)) * 7 + 40;
    const lx = m.left + pw - lw - 8;
    const ly = m.top + 8;
    o.push(`<rect x="${lx}" y="${ly}" width="${lw}" height="${series.length * 18 + 8}" fill="white" fill-opacity="0.85" stroke="#ccc"/>`);
    series.forEach((s, i) => {
      const y = ly + 16 + i * 18;
      o.push(`<line x1="${lx + 8}" y1="${y - 4}" x2="${lx + 28}" y2="${y - 4}" stroke="${COLORS[i % COLORS.length]}" stroke-width="2"/>`);
      o.push(`<text x="${lx + 34}" y="${y}">${esc(s.name)}</text>`);
    });
  }
  o.push('</svg>');
  return `${o.join('\n')}\n`;
}
