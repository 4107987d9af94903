/**
 * A sweep cell's measures per seed, their means and 95 % t-intervals over seeds, and the table and
 * scaling plot (error bars: the intervals) made of them.
 */
import { type Interval, tInterval } from '../eval/interval';
import type { GenerateReport } from '../request/report';
import { lineChartSvg, type Series } from '../io/svg';

/** What one run (one seed) of a cell measured; null where the model has no such judge. */
export interface CellMeasures {
  nfe_used: number;
  mean_reward: number;
  eval_accuracy: number | null;
  eval_log_prob: number | null;
  fid: number | null;
  /** Text-to-image: share of rows whose class (by the eval classifier) and whose every stated attribute hold. */
  prompt_class_accuracy: number | null;
  prompt_attribute_accuracy: number | null;
  /** Diversity of the returned samples in the eval model's features (when the report carries it). */
  vendi: number | null;
  mean_cosine_distance: number | null;
  wall_seconds: number;
}

export type Measure = keyof CellMeasures;
export const MEASURES: Measure[] = [
  'nfe_used',
  'mean_reward',
  'eval_accuracy',
  'eval_log_prob',
  'fid',
  'prompt_class_accuracy',
  'prompt_attribute_accuracy',
  'vendi',
  'mean_cosine_distance',
  'wall_seconds',
];

/** Means over seeds, with the half-widths of their 95 % t-intervals (null: one seed, no interval). */
export interface SweepRow extends CellMeasures {
  algorithm: string;
  budget: number;
  seeds: number;
  ci95: Record<Measure, number | null>;
  per_seed: CellMeasures[];
  /** Why the cell has no result (e.g. a budget below the algorithm's minimum). */
  skipped?: string;
}

export const INTERVAL_NOTE =
  'mean over seeds ± half-width of the two-sided 95 % Student-t interval (t_{0.975, S−1} · s/√S); ' +
  'one seed: no interval';

/** A run's measures from its report and the rewards of its rows. */
export function measuresOf(rep: GenerateReport, rewards: number[], n: number): CellMeasures {
  const pe = rep.prompt_eval;
  const div = (rep as { diversity?: { vendi: number | null; mean_cosine_distance: number | null } }).diversity;
  return {
    nfe_used: rep.nfe_used / n,
    mean_reward: rewards.reduce((a, b) => a + b, 0) / rewards.length,
    eval_accuracy: rep.eval?.accuracy ?? null,
    eval_log_prob: rep.eval?.mean_log_prob ?? null,
    fid: rep.eval?.fid ?? null,
    prompt_class_accuracy: pe?.classes?.accuracy ?? null,
    prompt_attribute_accuracy: pe?.all_attributes_accuracy ?? null,
    vendi: div?.vendi ?? null,
    mean_cosine_distance: div?.mean_cosine_distance ?? null,
    wall_seconds: rep.wall_seconds,
  };
}

/** One row from the runs of a cell over seeds. */
export function aggregate(algorithm: string, budget: number, runs: CellMeasures[]): SweepRow {
  const row = { algorithm, budget, seeds: runs.length, per_seed: runs } as SweepRow;
  row.ci95 = {} as SweepRow['ci95'];
  for (const m of MEASURES) {
    const vals = runs.map((r) => r[m]);
    const iv: Interval = tInterval(vals);
    (row as unknown as Record<Measure, number | null>)[m] = vals.every((v) => v === null) ? null : iv.mean;
    row.ci95[m] = iv.half;
  }
  return row;
}

export function skippedRow(algorithm: string, budget: number, seeds: number, why: string): SweepRow {
  const row = aggregate(algorithm, budget, []);
  return { ...row, seeds, nfe_used: NaN, mean_reward: NaN, wall_seconds: 0, skipped: why };
}

const fmt = (v: number | null, d: number, scale = 1) =>
  v === null || !Number.isFinite(v) ? 'n/a' : (scale * v).toFixed(d);

/** "mean ± half" (or the mean alone without an interval). */
function cell(r: SweepRow, m: Measure, d: number, scale = 1, unit = ''): string {
  const v = r[m];
  if (v === null || !Number.isFinite(v)) return 'n/a';
  const h = r.ci95[m];
  return fmt(v, d, scale) + (h === null ? '' : ` ± ${fmt(h, d, scale)}`) + unit;
}

/** The columns a table shows: those some row has a value for. */
function columns(rows: SweepRow[]): Array<{ head: string; m: Measure; d: number; scale?: number; unit?: string }> {
  const all = [
    { head: 'mean verifier reward', m: 'mean_reward' as Measure, d: 4 },
    { head: 'eval accuracy', m: 'eval_accuracy' as Measure, d: 1, scale: 100, unit: ' %' },
    { head: 'eval log-prob', m: 'eval_log_prob' as Measure, d: 3 },
    { head: 'Fréchet distance', m: 'fid' as Measure, d: 2 },
    { head: 'prompt class accuracy', m: 'prompt_class_accuracy' as Measure, d: 1, scale: 100, unit: ' %' },
    { head: 'prompt attribute accuracy', m: 'prompt_attribute_accuracy' as Measure, d: 1, scale: 100, unit: ' %' },
    { head: 'Vendi score', m: 'vendi' as Measure, d: 2 },
    { head: 'mean cosine distance', m: 'mean_cosine_distance' as Measure, d: 3 },
  ];
  return all.filter((c) => c.m === 'mean_reward' || rows.some((r) => !r.skipped && r[c.m] !== null));
}

export function sweepTable(rows: SweepRow[]): string {
  const cols = columns(rows);
  const seeds = Math.max(1, ...rows.map((r) => r.seeds));
  const lines = [
    `| algorithm | budget (NFE/sample) | NFE used | ${cols.map((c) => c.head).join(' | ')} | wall s |`,
    `|---|---:|---:|${cols.map(() => '---:|').join('')}---:|`,
  ];
  for (const r of rows)
    if (r.skipped) lines.push(`| ${r.algorithm} | ${r.budget} | budget too small |${' |'.repeat(cols.length + 1)}`);
    else
      lines.push(
        `| ${r.algorithm} | ${r.budget} | ${fmt(r.nfe_used, 0)} | ` +
          `${cols.map((c) => cell(r, c.m, c.d, c.scale, c.unit)).join(' | ')} | ${fmt(r.wall_seconds, 1)} |`,
      );
  const note = seeds > 1 ? `\n${seeds} seeds per cell: ${INTERVAL_NOTE}.\n` : '';
  return lines.join('\n') + '\n' + note;
}

function series(rows: SweepRow[], m: Measure, scale = 1): Series[] {
  return [...new Set(rows.map((r) => r.algorithm))].map((a) => ({
    name: a,
    points: rows
      .filter((r) => r.algorithm === a && !r.skipped && r[m] !== null)
      .map((r) => [r.nfe_used, scale * (r[m] as number)] as [number, number]),
    errors: rows
      .filter((r) => r.algorithm === a && !r.skipped && r[m] !== null)
      .map((r) => (r.ci95[m] === null ? null : scale * (r.ci95[m] as number))),
  }));
}

const PANELS: Array<{ m: Measure; title: string; ylabel: string; scale?: number }> = [
  { m: 'mean_reward', title: 'Verifier reward vs NFE', ylabel: 'mean verifier reward' },
  { m: 'eval_accuracy', title: 'Eval classifier accuracy vs NFE', ylabel: 'eval accuracy (%)', scale: 100 },
  { m: 'eval_log_prob', title: 'Eval log-probability of the class vs NFE', ylabel: 'eval mean log p(class | x)' },
  { m: 'prompt_class_accuracy', title: 'Prompt class accuracy vs NFE', ylabel: 'class accuracy (%)', scale: 100 },
  {
    m: 'prompt_attribute_accuracy',
    title: 'Prompt attribute accuracy vs NFE',
    ylabel: 'all attributes hold (%)',
    scale: 100,
  },
  { m: 'vendi', title: 'Diversity (Vendi score) vs NFE', ylabel: 'Vendi score of the returned samples' },
];

/** One panel per measure some row has; error bars are the 95 % intervals over seeds. */
export function scalingSvg(rows: SweepRow[]): string {
  const panels = PANELS.filter((p) => p.m === 'mean_reward' || rows.some((r) => !r.skipped && r[p.m] !== null)).map(
    (p) => ({ title: p.title, ylabel: p.ylabel, series: series(rows, p.m, p.scale) }),
  );
  const seeds = Math.max(1, ...rows.map((r) => r.seeds));
  const xlabel = 'NFE per sample (log scale)' + (seeds > 1 ? `; bars: 95 % t-interval over ${seeds} seeds` : '');
  return lineChartSvg(panels, xlabel);
}
