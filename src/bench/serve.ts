/**
 * `npm run bench:serve`: a loopback load generator against `diffusion-search serve` (a child
 * process), with cross-search batching on and off in one run. Closed loop: C clients each send
 * requests back to back for a while; throughput in searches/s and latency p50/p95 per cell. Then
 * "small under load": one client's small requests while 16 clients run big ones, against the
 * small request's unloaded latency.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../native';
import { forwardFloor, type ForwardFloor } from './forward-floor';
import type { Precision } from '../precision';

export interface Scenario {
  algorithm: 'best-of-n' | 'evosearch' | 'zero-order' | 'particles';
  budget: number;
  /** The table's name (default: the algorithm). */
  name?: string;
  /** Steps of each sample (default: the bench's). */
  steps?: number;
  algorithmOptions?: Record<string, unknown>;
}

/**
 * Named scenarios whose model calls are small: plain sampling (n = 1, one row a call), zero-order
 * (4 neighbours), particles (K = 4) and EvoSearch with a small population (4–8 rows a call).
 */
export const PRESETS: Record<string, (budget?: number) => Scenario> = {
  plain: () => ({ name: 'plain', algorithm: 'best-of-n', budget: 20, steps: 20 }),
  'zero-order': (budget = 100) => ({ name: 'zero-order', algorithm: 'zero-order', budget }),
  'particles-k4': (budget = 100) => ({
    name: 'particles-k4',
    algorithm: 'particles',
    budget,
    algorithmOptions: { particles: 4 },
  }),
  'evosearch-small': (budget = 100) => ({
    name: 'evosearch-small',
    algorithm: 'evosearch',
    budget,
    algorithmOptions: { population: [8, 4, 4], levels: [0, 4] },
  }),
};

/** 'plain', 'particles-k4:100' (a preset, its budget) or 'best-of-n:100' (an algorithm and budget). */
export function parseScenario(text: string): Scenario {
  const [name, b] = text.split(':');
  const budget = b === undefined ? undefined : Number(b);
  if (PRESETS[name]) return PRESETS[name](budget);
  return { algorithm: name as Scenario['algorithm'], budget: budget ?? 100 };
}

const label = (s: Scenario) => s.name ?? s.algorithm;

export interface ServeBenchCell {
  batching: boolean;
  algorithm: string;
  budget: number;
  clients: number;
  repeat: number;
  requests: number;
  seconds: number;
  searches_per_second: number;
  p50_ms: number;
  p95_ms: number;
  rows_per_forward: number;
  /** The server's CPU seconds (user + system) per search: its cost, whatever share of a shared machine it got. */
  cpu_s_per_search: number;
  /** The forward floor measured right before and after this cell, averaged (null: --no-floor). */
  floor_cpu_ms_per_row: number | null;
}

export interface ServeBenchOptions {
  model?: string;
  steps?: number;
  clients?: number[];
  scenarios?: Scenario[];
  /** Seconds each cell keeps issuing requests (requests started run to the end). */
  seconds?: number;
  repeats?: number;
  /** The server's --max-batch (default: serve's). */
  maxBatch?: number;
  /** More arguments for both servers (e.g. --threads 1). */
  serveArgs?: string[];
  /** Also the small-under-load check. */
  underLoad?: boolean;
  /** Also the forward floor (./forward-floor) and the throughput ceiling it sets (default true). */
  floor?: boolean;
  log?: (line: string) => void;
}

const quantile = (xs: number[], q: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
};

async function startServer(
  batching: boolean,
  extra: string[] = [],
): Promise<{ url: string; child: ChildProcess; stop: () => Promise<void> }> {
  const cli = path.join(packageRoot, 'lib', 'cli', 'index.js');
  const args = [
    cli,
    'serve',
    '--port',
    '0',
    '--max-request-nfe',
    '1000000',
    ...extra,
    ...(batching ? [] : ['--no-batching']),
  ];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '',
    err = '';
  child.stderr!.on('data', (d) => (err += d));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${err}`)));
  });
  return {
    url,
    child,
    stop: () =>
      new Promise<void>((r) => {
        child.once('exit', () => r());
        child.kill('SIGTERM');
      }),
  };
}

/** CPU seconds (user + system) a process has used, from /proc (Linux). */
function cpuSeconds(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}

async function request(url: string, body: Record<string, unknown>): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(`${url}/v1/generate`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });
  const j = (await r.json()) as { error?: { message: string } };
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${j.error?.message}`);
  return performance.now() - t0;
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}\\{[^}]*kind="denoiser"[^}]*\\} ([\\d.e+-]+)$`, 'gm')))
    sum += Number(m[1]);
  return sum;
}

/** C clients, back to back, for `seconds` and at least `minRequests`; every request started is awaited. */
async function closedLoop(
  url: string,
  clients: number,
  seconds: number,
  body: (k: number) => Record<string, unknown>,
  minRequests = 0,
) {
  const lat: number[] = [];
  let k = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end || k < minRequests) lat.push(await request(url, body(k++)));
    }),
  );
  return { lat, seconds: (performance.now() - t0) / 1000 };
}

/**
 * The serve bench: a server with batching on and one with it off, both up; every scenario ×
 * client count as a closed loop (a cell) on one, then the same cell on the other, with the forward
 * floor measured between cells (a neighbour on a shared machine moves both within minutes, so each
 * cell is compared with the floor of its own minute); then small requests alone and under load.
 */
export async function benchServe(o: ServeBenchOptions = {}) {
  const log = o.log ?? (() => {});
  const model = o.model ?? 'fashion-flow';
  const steps = o.steps ?? 10;
  const clients = o.clients ?? [1, 4, 16];
  const scenarios = o.scenarios ?? [
    { algorithm: 'best-of-n', budget: 100 },
    { algorithm: 'evosearch', budget: 100 },
    { algorithm: 'best-of-n', budget: 500 },
    { algorithm: 'evosearch', budget: 500 },
  ];
  const seconds = o.seconds ?? 15;
  const repeats = o.repeats ?? 1;
  const cells: ServeBenchCell[] = [];
  const underLoad: UnderLoadRow[] = [];
  const body: RequestBody = (s, k) => ({
    model,
    algorithm: s.algorithm,
    budget: s.budget,
    n: 1,
    steps: s.steps ?? steps,
    seed: k,
    class: k % 10,
    eval: false,
    ...(s.algorithmOptions ? { algorithmOptions: s.algorithmOptions } : {}),
  });
  const precision = o.serveArgs?.[o.serveArgs.indexOf('--precision') + 1] === 'bf16' ? 'bf16' : 'fp32';
  const measureFloor = () => (o.floor === false ? Promise.resolve(null) : floorLogged(model, precision, log));
  const floor: ForwardFloor | null = await measureFloor();
  let before = floor;
  const servers: Array<Awaited<ReturnType<typeof startServer>>> = [];
  try {
    for (const batching of [true, false]) {
      const extra = [...(o.maxBatch ? ['--max-batch', String(o.maxBatch)] : []), ...(o.serveArgs ?? [])];
      servers.push(await startServer(batching, extra));
      for (const s of scenarios) await request(servers[servers.length - 1].url, body(s, 0)); // load and warm up
    }
    for (let rep = 0; rep < repeats; rep++)
      for (const s of scenarios)
        for (const c of clients)
          for (const [k, batching] of [true, false].entries()) {
            const spec = { batching, scenario: s, clients: c, repeat: rep, seconds };
            const cell = await measureCell(servers[k], spec, body);
            const after = await measureFloor();
            cell.floor_cpu_ms_per_row = before && after ? (before.cpu_ms_per_row + after.cpu_ms_per_row) / 2 : null;
            before = after;
            cells.push(cell);
            log(cellLine(cell, s));
          }
    if (o.underLoad ?? true)
      for (const [k, batching] of [true, false].entries()) {
        underLoad.push(await smallUnderLoad(servers[k].url, batching, seconds, body));
        log(underLoadLine(underLoad[underLoad.length - 1]));
      }
  } finally {
    await Promise.all(servers.map((srv) => srv.stop()));
  }
  return {
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? '?', load: os.loadavg() },
    model,
    steps,
    seconds,
    repeats,
    maxBatch: o.maxBatch ?? "serve's default (32 on CPU)",
    floor,
    ceilings: ceilings(cells),
    cells,
    underLoad,
  };
}

type RequestBody = (s: Scenario, k: number) => Record<string, unknown>;

async function floorLogged(model: string, precision: Precision, log: (line: string) => void) {
  const f = await forwardFloor(model, 32, 2, precision);
  if (f)
    log(
      `forward floor: ${f.cpu_ms_per_row.toFixed(2)} CPU ms per row (2 forwards of ${f.rows} rows side by side, ` +
        '1 thread each)',
    );
  return f;
}

const cellLine = (cell: ServeBenchCell, s: Scenario) =>
  `batching ${cell.batching ? 'on ' : 'off'} ${label(s).padEnd(15)} budget ${String(s.budget).padStart(3)} ` +
  `clients ${String(cell.clients).padStart(2)}: ${cell.searches_per_second.toFixed(2)} searches/s, p50 ` +
  `${cell.p50_ms.toFixed(0)} ms, p95 ${cell.p95_ms.toFixed(0)} ms, ${cell.requests} requests, ` +
  `${cell.rows_per_forward.toFixed(1)} rows/forward, ${cell.cpu_s_per_search.toFixed(2)} CPU s/search`;

const underLoadLine = (row: UnderLoadRow) =>
  `batching ${row.batching ? 'on ' : 'off'} small under load (16 × evosearch 500): unloaded p50 ` +
  `${row.unloaded_p50_ms.toFixed(0)} ms, loaded p50 ${row.loaded_p50_ms.toFixed(0)} ms, p95 ` +
  `${row.loaded_p95_ms.toFixed(0)} ms (${row.ratio_p95.toFixed(1)}×), ${row.probes} probes`;

interface UnderLoadRow {
  batching: boolean;
  unloaded_p50_ms: number;
  loaded_p50_ms: number;
  loaded_p95_ms: number;
  ratio_p95: number;
  probes: number;
}

/** One cell: a closed loop of one scenario from `clients` clients, with the server's forwards and CPU over it. */
async function measureCell(
  srv: { url: string; child: { pid?: number } },
  cell: { batching: boolean; scenario: Scenario; clients: number; repeat: number; seconds: number },
  body: RequestBody,
): Promise<ServeBenchCell> {
  const s = cell.scenario;
  const f0 = await metric(srv.url, 'diffusion_search_forwards_total');
  const r0 = await metric(srv.url, 'diffusion_search_rows_per_forward_sum');
  const c0 = cpuSeconds(srv.child.pid!);
  const r = await closedLoop(srv.url, cell.clients, cell.seconds, (k) => body(s, k));
  const c1 = cpuSeconds(srv.child.pid!); // before the metrics requests below, which are not searches
  const f1 = await metric(srv.url, 'diffusion_search_forwards_total');
  const r1 = await metric(srv.url, 'diffusion_search_rows_per_forward_sum');
  return {
    batching: cell.batching,
    algorithm: label(s),
    budget: s.budget,
    clients: cell.clients,
    repeat: cell.repeat,
    requests: r.lat.length,
    seconds: r.seconds,
    searches_per_second: r.lat.length / r.seconds,
    p50_ms: quantile(r.lat, 0.5),
    p95_ms: quantile(r.lat, 0.95),
    rows_per_forward: f1 > f0 ? (r1 - r0) / (f1 - f0) : 0,
    cpu_s_per_search: (c1 - c0) / r.lat.length,
    floor_cpu_ms_per_row: null,
  };
}

/** Small requests (best-of-n, budget 100) from one client, alone and while 16 clients run evosearch at budget 500. */
async function smallUnderLoad(url: string, batching: boolean, seconds: number, body: RequestBody) {
  const small: Scenario = { algorithm: 'best-of-n', budget: 100 },
    big: Scenario = { algorithm: 'evosearch', budget: 500 };
  const alone = await closedLoop(url, 1, Math.max(5, seconds / 2), (k) => body(small, k), 10);
  let stop = false;
  const bigs = Array.from({ length: 16 }, async (_, i) => {
    for (let k = 0; !stop; k++) await request(url, body(big, 1000 * i + k));
  });
  await new Promise((r) => setTimeout(r, 2000));
  // At least 10 probes: a p95 of two is only their maximum.
  const loaded = await closedLoop(url, 1, seconds, (k) => body(small, 5000 + k), 10);
  stop = true;
  await Promise.all(bigs);
  const row: UnderLoadRow = {
    batching,
    unloaded_p50_ms: quantile(alone.lat, 0.5),
    loaded_p50_ms: quantile(loaded.lat, 0.5),
    loaded_p95_ms: quantile(loaded.lat, 0.95),
    ratio_p95: quantile(loaded.lat, 0.95) / quantile(alone.lat, 0.5),
    probes: loaded.lat.length,
  };
  return row;
}

/**
 * Per scenario at its most clients: batching on ÷ off in searches/s, and the most it could be on
 * this machine: off's CPU per search ÷ the floor's (budget × the least CPU per row) — a search on
 * cannot cost less, and both use every core at that load. Each cell against the floor of its minute.
 */
function ceilings(cells: ServeBenchCell[]) {
  const most = Math.max(...cells.map((c) => c.clients));
  const out: Array<{
    algorithm: string;
    budget: number;
    clients: number;
    on_over_off: number;
    ceiling: number | null;
    on_cpu_over_floor: number | null;
    /** Searches/s the floor allows on every core; on's share of it, CPU for CPU (goal ≥ 0.9). */
    ceiling_searches_per_second: number | null;
    of_ceiling: number | null;
  }> = [];
  for (const on of cells.filter((c) => c.batching && c.clients === most && c.repeat === 0)) {
    const off = cells.find(
      (c) =>
        !c.batching && c.clients === most && c.repeat === 0 && c.algorithm === on.algorithm && c.budget === on.budget,
    );
    if (!off) continue;
    const least = (c: ServeBenchCell) => (c.floor_cpu_ms_per_row ? (c.budget * c.floor_cpu_ms_per_row) / 1000 : null);
    const onLeast = least(on),
      offLeast = least(off);
    out.push({
      algorithm: on.algorithm,
      budget: on.budget,
      clients: most,
      on_over_off: on.searches_per_second / off.searches_per_second,
      ceiling: offLeast ? off.cpu_s_per_search / offLeast : null,
      on_cpu_over_floor: onLeast ? on.cpu_s_per_search / onLeast : null,
      ceiling_searches_per_second: onLeast ? os.cpus().length / onLeast : null,
      of_ceiling: onLeast ? onLeast / on.cpu_s_per_search : null,
    });
  }
  return out;
}

function floorRange(cells: ServeBenchCell[]): string {
  const f = cells.flatMap((c) => (c.floor_cpu_ms_per_row ? [c.floor_cpu_ms_per_row] : []));
  return f.length ? `${Math.min(...f).toFixed(2)}–${Math.max(...f).toFixed(2)}` : '–';
}

export function formatServeBench(r: Awaited<ReturnType<typeof benchServe>>): string {
  const lines = [
    `serve bench: ${r.model}, n = 1, ${r.steps} steps, closed loop ${r.seconds} s per cell, max batch ` +
      `${r.maxBatch}; ${r.machine.cpus} × ${r.machine.cpu}, load average ` +
      `${r.machine.load.map((l) => l.toFixed(1)).join(' ')}`,
    '',
    '| algorithm | budget | clients | batching | searches/s | p50 ms | p95 ms | rows/forward | CPU s/search | ' +
      'requests |',
    '|---|---:|---:|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const c of r.cells)
    lines.push(
      `| ${c.algorithm} | ${c.budget} | ${c.clients} | ${c.batching ? 'on' : 'off'} | ` +
        `${c.searches_per_second.toFixed(2)} | ${c.p50_ms.toFixed(0)} | ${c.p95_ms.toFixed(0)} | ` +
        `${c.rows_per_forward.toFixed(1)} | ${c.cpu_s_per_search.toFixed(2)} | ${c.requests} |`,
    );
  if (r.underLoad.length) {
    lines.push(
      '',
      '| small request (best-of-n 100) | batching | unloaded p50 ms | under 16 × evosearch-500: p50 ms | p95 ms | ' +
        'p95 / unloaded |',
      '|---|---|---:|---:|---:|---:|',
    );
    for (const u of r.underLoad)
      lines.push(
        `| | ${u.batching ? 'on' : 'off'} | ${u.unloaded_p50_ms.toFixed(0)} | ${u.loaded_p50_ms.toFixed(0)} | ` +
          `${u.loaded_p95_ms.toFixed(0)} | ${u.ratio_p95.toFixed(1)}× |`,
      );
  }
  if (r.floor) {
    lines.push(
      '',
      `Forward floor: ${floorRange(r.cells)} CPU ms per row (2 forwards of ${r.floor.rows} rows side by side, 1 ` +
        'thread each), measured between cells: each cell against the mean of the floors before and after it.',
      '| scenario | budget | clients | on ÷ off searches/s | ceiling: off CPU/search ÷ (budget × floor) | on ' +
        'CPU/search ÷ (budget × floor) | ceiling searches/s (all cores) | on reaches (goal ≥ 90 %) |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const c of r.ceilings)
      lines.push(
        `| ${c.algorithm} | ${c.budget} | ${c.clients} | ${c.on_over_off.toFixed(2)}× | ` +
          `${c.ceiling?.toFixed(2) ?? '–'}× | ${c.on_cpu_over_floor?.toFixed(2) ?? '–'} | ` +
          `${c.ceiling_searches_per_second?.toFixed(1) ?? '–'} | ` +
          `${c.of_ceiling === null ? '–' : `${(100 * c.of_ceiling).toFixed(0)} %`} |`,
      );
  }
  return lines.join('\n');
}

/**
 * bench/serve.js: --json, --seconds s, --max-batch n, --serve-args '--threads 1', --repeats r,
 * --clients 1,4,16, --scenarios best-of-n:100,evosearch:500, --no-under-load, --no-floor.
 */
export async function main(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const json = argv.includes('--json');
  const scen = arg('--scenarios');
  const r = await benchServe({
    seconds: arg('--seconds') ? Number(arg('--seconds')) : undefined,
    repeats: arg('--repeats') ? Number(arg('--repeats')) : undefined,
    clients: arg('--clients')?.split(',').map(Number),
    model: arg('--model'),
    scenarios: scen?.split(',').map(parseScenario),
    underLoad: !argv.includes('--no-under-load'),
    floor: !argv.includes('--no-floor'),
    maxBatch: arg('--max-batch') ? Number(arg('--max-batch')) : undefined,
    serveArgs: arg('--serve-args')?.split(' ').filter(Boolean),
    log: json ? undefined : (l) => process.stderr.write(l + '\n'),
  });
  process.stdout.write((json ? JSON.stringify(r, null, 2) : formatServeBench(r)) + '\n');
}
