/**
 * Verifier hacking (Ma et al. 2025's transfer table): search with one verifier (or a rank ensemble),
 * judge the returned samples with every judge (the other verifiers and the held-out eval model),
 * and report each judge's gain over plain sampling in units of that judge's standard deviation on
 * plain samples. The transfer of a search is its gain on a judge divided by its gain on its own
 * verifier (for an ensemble: the mean gain on its members). Seeds give 95 % t-intervals.
 */
import { generate } from '../generate';
import { tInterval } from '../eval/interval';
import { loadVerifier } from '../models/registry';
import { tensor } from '../tensor';
import type { Verifier } from '../verifiers/verifier';
import type { AlgorithmName } from '../search';

export interface HackingOptions {
  model: string;
  cls: string;
  /** Search verifiers; `a+b` is a rank ensemble of a and b. */
  searchVerifiers: string[];
  /** Judges: verifier names ('oracle' is the held-out eval model's log p of the class). */
  judges: string[];
  algorithms: AlgorithmName[];
  budgets: number[];
  n: number;
  seeds: number;
  /** Plain samples per seed for the reference mean and spread. */
  plainN: number;
}

export interface HackingRow {
  search_verifier: string;
  algorithm: string;
  budget: number;
  /** Per judge: gain over plain sampling in plain-sample standard deviations (mean, 95 % half-width). */
  gain: Record<string, { mean: number; half: number | null }>;
  /** Per judge: gain on the judge / gain on the search verifier (mean over seeds, 95 % half-width). */
  transfer: Record<string, { mean: number; half: number | null }>;
  eval_accuracy: { mean: number; half: number | null };
}

type Judges = Array<{ name: string; v: Verifier }>;

/** Mean score of each judge on samples [N, ...shape] of class `cls`. */
async function judgeScores(judges: Judges, samples: Float32Array, shape: number[], cls: number) {
  const x = tensor(samples, shape);
  const cond = new Array(shape[0]).fill(cls);
  const out: Record<string, number[]> = {};
  try {
    for (const j of judges) out[j.name] = Array.from(await j.v.score(x, cond));
  } finally {
    x.dispose();
  }
  return out;
}

async function run(
  o: HackingOptions,
  algorithm: AlgorithmName,
  budget: number,
  verifier: string[],
  seed: number,
  n: number,
) {
  return generate({ model: o.model, class: o.cls, algorithm, budget, n, seed, verifier });
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const sd = (v: number[]) => Math.sqrt(v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / (v.length - 1));

/** Plain sampling's mean and standard deviation per judge, pooled over seeds. */
async function plainReference(o: HackingOptions, judges: Judges) {
  const pooled: Record<string, number[]> = Object.fromEntries(judges.map((j) => [j.name, []]));
  let acc = 0;
  for (let s = 0; s < o.seeds; s++) {
    const r = await run(o, 'baseline', 20, ['classifier'], 1000 + s, o.plainN);
    const sc = await judgeScores(judges, r.samples, r.shape, r.report.class!);
    for (const j of judges) pooled[j.name].push(...sc[j.name]);
    acc += (r.report.eval?.accuracy ?? NaN) / o.seeds;
  }
  const ref = Object.fromEntries(judges.map((j) => [j.name, { mean: mean(pooled[j.name]), sd: sd(pooled[j.name]) }]));
  return { ref, accuracy: acc };
}

/** z-gains of one search (verifier, algorithm, budget) per seed, per judge. */
async function searchGains(
  o: HackingOptions,
  judges: Judges,
  ref: Record<string, { mean: number; sd: number }>,
  cell: { sv: string; algorithm: AlgorithmName; budget: number },
) {
  const gains: Array<Record<string, number>> = [];
  const accuracy: number[] = [];
  for (let s = 0; s < o.seeds; s++) {
    const r = await run(o, cell.algorithm, cell.budget, cell.sv.split('+'), s, o.n);
    const sc = await judgeScores(judges, r.samples, r.shape, r.report.class!);
    gains.push(Object.fromEntries(judges.map((j) => [j.name, (mean(sc[j.name]) - ref[j.name].mean) / ref[j.name].sd])));
    accuracy.push(r.report.eval?.accuracy ?? NaN);
  }
  return { gains, accuracy };
}

const iv = (v: number[]) => {
  const t = tInterval(v);
  return { mean: t.mean, half: t.half };
};

/**
 * A table row from per-seed z-gains: each judge's gain, and its transfer (gain on the judge / gain on
 * the search verifier; for an ensemble `a+b` the mean gain on its members), both over seeds.
 */
export function transferRow(
  cell: { sv: string; algorithm: string; budget: number },
  judges: string[],
  g: { gains: Array<Record<string, number>>; accuracy: number[] },
): HackingRow {
  const own = (x: Record<string, number>) => mean(cell.sv.split('+').map((m) => x[m]));
  return {
    search_verifier: cell.sv,
    algorithm: cell.algorithm,
    budget: cell.budget,
    gain: Object.fromEntries(judges.map((j) => [j, iv(g.gains.map((x) => x[j]))])),
    transfer: Object.fromEntries(judges.map((j) => [j, iv(g.gains.map((x) => x[j] / own(x)))])),
    eval_accuracy: iv(g.accuracy),
  };
}

/** Every search verifier × algorithm × budget; the plain reference first. */
export async function verifierHacking(o: HackingOptions, log: (s: string) => void = () => {}) {
  const members = [...new Set([...o.judges, ...o.searchVerifiers.flatMap((s) => s.split('+'))])];
  const judges: Judges = [];
  for (const name of members) judges.push({ name, v: await loadVerifier([name]) });
  const plain = await plainReference(o, judges);
  log(`plain reference: ${JSON.stringify(plain)}`);
  const rows: HackingRow[] = [];
  for (const sv of o.searchVerifiers)
    for (const algorithm of o.algorithms)
      for (const budget of o.budgets) {
        const cell = { sv, algorithm, budget };
        const names = judges.map((j) => j.name);
        rows.push(transferRow(cell, names, await searchGains(o, judges, plain.ref, cell)));
        log(JSON.stringify(rows[rows.length - 1]));
      }
  return { options: o, plain, rows };
}

const pm = (x: { mean: number; half: number | null }, d = 2) =>
  x.half === null ? x.mean.toFixed(d) : `${x.mean.toFixed(d)} ± ${x.half.toFixed(d)}`;

/** The table: z-gain on every judge, and the transfer to the held-out eval. */
export function hackingTable(rows: HackingRow[], judges: string[], heldOut = 'oracle'): string {
  const head =
    `| search verifier | algorithm | NFE | ${judges.map((j) => `gain on ${j}`).join(' | ')} | ` +
    `transfer to ${heldOut} | eval accuracy |`;
  const lines = [head, `|---|---|---:|${judges.map(() => '---:|').join('')}---:|---:|`];
  const pct = (x: { mean: number; half: number | null }) => ({
    mean: 100 * x.mean,
    half: x.half === null ? null : 100 * x.half,
  });
  for (const r of rows)
    lines.push(
      `| ${r.search_verifier} | ${r.algorithm} | ${r.budget} | ${judges.map((j) => pm(r.gain[j])).join(' | ')} | ` +
        `${pm(r.transfer[heldOut])} | ${pm(pct(r.eval_accuracy), 0)} % |`,
    );
  return lines.join('\n') + '\n';
}
