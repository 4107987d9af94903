/**
 * An engine's counters: requests by outcome, queue depth, forwards and the rows in each (batch
 * fill), NFE and its rate, seconds inside the models. `snapshot()` for code, `prometheus()` for
 * a scraper (text exposition format 0.0.4).
 */

/** Upper bounds of the rows-per-forward histogram. */
const ROW_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

export type ModelKind = 'denoiser' | 'verifier' | 'tpm' | 'other';

interface ModelStats {
  kind: ModelKind;
  forwards: number;
  rows: number;
  seconds: number;
  buckets: number[];
  /** Merged calls: forwards that carried rows of more than one search (a step pool's count each). */
  merged: number;
}

export interface MetricsSnapshot {
  uptimeSeconds: number;
  /** Requests waiting for admission. */
  queueDepth: number;
  /** Requests running. */
  activeRequests: number;
  /** Searches running (a request runs up to searchesPerRequest at once). */
  activeSearches: number;
  /** Model calls waiting in the batchers, and their rows. */
  queuedCalls: number;
  queuedRows: number;
  /** Estimated bytes the running requests hold (the admission's memory ceiling counts these). */
  reservedBytes: number;
  memoryLimitBytes: number;
  /**
   * Requests by outcome: ok, partial (cancelled after some samples), aborted, busy, error:<CODE>;
   * refused:<status>:<CODE> for those a server refused before the engine (404, 413, bad JSON, ...).
   */
  requests: Record<string, number>;
  nfe: number;
  /** NFE per second over the last 10 s. */
  nfePerSecond: number;
  /** Seconds inside models by kind (denoiser forwards, verifier forwards, ...). */
  modelSeconds: number;
  verifierSeconds: number;
  forwards: number;
  /** Mean rows per forward of the denoisers, and that over maxBatch. */
  rowsPerForward: number;
  batchFill: number;
  maxBatch: number;
  /** Per loaded model file: its forwards, rows, merged forwards and seconds. */
  models: Array<{
    model: string;
    kind: ModelKind;
    forwards: number;
    rows: number;
    merged: number;
    seconds: number;
    rowsPerForward: number;
  }>;
  /** Module files loaded from disk since the engine started (loads once: repeated requests do not add). */
  loads: number;
  loaded: number;
}

export class EngineMetrics {
  readonly started = performance.now();
  readonly requests = new Map<string, number>();
  private readonly models = new Map<string, ModelStats>();
  nfe = 0;
  loads = 0;
  /** (time, nfe) samples for the rate. */
  private readonly recent: Array<[number, number]> = [];

  constructor(readonly maxBatch: number) {}

  /** A request a server refused before it reached the engine. */
  refused(status: number, code: string): void {
    this.outcome(`refused:${status}:${code}`);
  }

  outcome(what: string): void {
    this.requests.set(what, (this.requests.get(what) ?? 0) + 1);
  }

  addNfe(n: number): void {
    this.nfe += n;
    const now = performance.now();
    this.recent.push([now, n]);
    while (this.recent.length && now - this.recent[0][0] > 10_000) this.recent.shift();
  }

  forward(model: string, kind: ModelKind, rows: number, seconds: number, callers: number): void {
    let m = this.models.get(model);
    if (!m)
      this.models.set(
        model,
        (m = { kind, forwards: 0, rows: 0, seconds: 0, buckets: ROW_BUCKETS.map(() => 0), merged: 0 }),
      );
    m.forwards++;
    m.rows += rows;
    m.seconds += seconds;
    if (callers > 1) m.merged++;
    if (kind === 'denoiser') this.addNfe(rows); // a row through the denoiser is one NFE (guidance sends two)
    ROW_BUCKETS.forEach((b, i) => rows <= b && m.buckets[i]++);
  }

  snapshot(
    live: Pick<
      MetricsSnapshot,
      | 'queueDepth'
      | 'activeRequests'
      | 'activeSearches'
      | 'queuedCalls'
      | 'queuedRows'
      | 'reservedBytes'
      | 'memoryLimitBytes'
      | 'loaded'
    >,
  ): MetricsSnapshot {
    const now = performance.now();
    while (this.recent.length && now - this.recent[0][0] > 10_000) this.recent.shift();
    const window = Math.min(10, (now - this.started) / 1000);
    const sum = (k: ModelKind, f: (m: ModelStats) => number) =>
      [...this.models.values()].filter((m) => m.kind === k).reduce((s, m) => s + f(m), 0);
    const dForwards = sum('denoiser', (m) => m.forwards),
      dRows = sum('denoiser', (m) => m.rows);
    return {
      uptimeSeconds: (now - this.started) / 1000,
      ...live,
      requests: Object.fromEntries(this.requests),
      nfe: this.nfe,
      nfePerSecond: window > 0 ? this.recent.reduce((s, [, n]) => s + n, 0) / window : 0,
      modelSeconds: sum('denoiser', (m) => m.seconds),
      verifierSeconds: sum('verifier', (m) => m.seconds),
      forwards: [...this.models.values()].reduce((s, m) => s + m.forwards, 0),
      rowsPerForward: dForwards ? dRows / dForwards : 0,
      batchFill: dForwards ? dRows / dForwards / this.maxBatch : 0,
      maxBatch: this.maxBatch,
      models: [...this.models].map(([model, m]) => ({
        model,
        kind: m.kind,
        forwards: m.forwards,
        rows: m.rows,
        merged: m.merged,
        seconds: m.seconds,
        rowsPerForward: m.forwards ? m.rows / m.forwards : 0,
      })),
      loads: this.loads,
    };
  }

  /** The Prometheus text format of a snapshot. */
  prometheus(s: MetricsSnapshot): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, lines: string[]) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
    const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
    const g = (name: string, help: string, v: number, type = 'gauge') => metric(name, type, help, [`${name} ${v}`]);
    g('diffusion_search_uptime_seconds', 'Seconds since the engine started.', s.uptimeSeconds);
    g('diffusion_search_queue_depth', 'Requests waiting for admission.', s.queueDepth);
    g('diffusion_search_active_requests', 'Requests running.', s.activeRequests);
    g('diffusion_search_active_searches', 'Searches running.', s.activeSearches);
    g('diffusion_search_queued_rows', 'Rows waiting in the batchers for a forward.', s.queuedRows);
    g('diffusion_search_reserved_bytes', 'Estimated bytes held by running requests.', s.reservedBytes);
    g(
      'diffusion_search_memory_limit_bytes',
      'The admission memory ceiling.',
      Number.isFinite(s.memoryLimitBytes) ? s.memoryLimitBytes : -1,
    );
    const outcome = (k: string) => {
      const r = /^refused:(\d+):(.*)$/.exec(k);
      return r ? `outcome="refused",status="${r[1]}",code="${esc(r[2])}"` : `outcome="${esc(k)}"`;
    };
    const requests = Object.entries(s.requests).map(([k, v]) => `diffusion_search_requests_total{${outcome(k)}} ${v}`);
    metric(
      'diffusion_search_requests_total',
      'counter',
      'Requests by outcome (refused: by status and code).',
      requests,
    );
    g('diffusion_search_nfe_total', 'Model evaluations (NFE) charged to searches.', s.nfe, 'counter');
    g('diffusion_search_nfe_per_second', 'NFE per second over the last 10 s.', s.nfePerSecond);
    g('diffusion_search_model_loads_total', 'Module files loaded from disk.', s.loads, 'counter');
    g('diffusion_search_models_loaded', 'Models held by the engine.', s.loaded);
    g('diffusion_search_max_batch', 'Most rows per forward.', s.maxBatch);
    const lbl = (m: { model: string; kind: string }) => `model="${esc(m.model)}",kind="${m.kind}"`;
    metric(
      'diffusion_search_forwards_total',
      'counter',
      'Module forwards.',
      s.models.map((m) => `diffusion_search_forwards_total{${lbl(m)}} ${m.forwards}`),
    );
    metric(
      'diffusion_search_merged_forwards_total',
      'counter',
      'Forwards that carried rows of more than one search.',
      s.models.map((m) => `diffusion_search_merged_forwards_total{${lbl(m)}} ${m.merged}`),
    );
    metric(
      'diffusion_search_model_seconds_total',
      'counter',
      'Seconds inside module forwards.',
      s.models.map((m) => `diffusion_search_model_seconds_total{${lbl(m)}} ${m.seconds}`),
    );
    const hist: string[] = [];
    for (const [model, m] of this.models) {
      ROW_BUCKETS.forEach((b, i) =>
        hist.push(
          `diffusion_search_rows_per_forward_bucket{${lbl({ model, kind: m.kind })},le="${b}"} ${m.buckets[i]}`,
        ),
      );
      hist.push(`diffusion_search_rows_per_forward_bucket{${lbl({ model, kind: m.kind })},le="+Inf"} ${m.forwards}`);
      hist.push(`diffusion_search_rows_per_forward_sum{${lbl({ model, kind: m.kind })}} ${m.rows}`);
      hist.push(`diffusion_search_rows_per_forward_count{${lbl({ model, kind: m.kind })}} ${m.forwards}`);
    }
    metric('diffusion_search_rows_per_forward', 'histogram', 'Rows per module forward (batch fill).', hist);
    return out.join('\n') + '\n';
  }
}
