/** `diffusion-search serve`: the HTTP server over one engine (src/server), until SIGTERM or SIGINT. */
import type { Command } from 'commander';
import { DiffusionSearchError } from '../errors';
import { createEngine } from '../engine/engine';
import { createServer } from '../server/server';
import { readToken, TOKEN_ENV } from '../server/auth';
import { checkExposure, checkModelsDir, isLoopback, listenError } from '../server/startup';
import { resolveModel, shipped } from '../models/shipped';
import { int, precisionFlag } from './options';
import {
  addAllowRemoteFlag,
  addRemoteVerifierFlags,
  parseAllowedOrigins,
  remoteVerifierOptions,
} from './remote-verifier-flags';

/** Where the playground is; with a token, how to open it (the token itself is never printed). */
function pageLine(address: string, port: number, token: boolean): string {
  const url = `http://${address.includes(':') ? `[${address}]` : address}:${port}/`;
  return `playground: ${url}${token ? '?token=<your token> (once; then a cookie holds it)' : ''}\n`;
}

/** '512m', '8g', '1048576' → bytes. */
export function parseBytes(s: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(s.trim());
  if (!m) throw new DiffusionSearchError(`${what} must be bytes, e.g. 512m or 8g, got '${s}'`, 'ARGUMENT');
  return Math.round(Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase()));
}

// Over 80 lines by design: a declarative list of commands, flags and help text, one line
// each, that reads top to bottom as the CLI's surface; splitting it would scatter that list.
export function addServe(program: Command): void {
  const command = program
    .command('serve')
    .description('an HTTP server over one engine: models loaded once, concurrent searches batched together')
    .option('--port <n>', 'port (0: any free one; the line "listening on ..." says which)', '8080')
    .option('--host <addr>', 'address to bind', '127.0.0.1')
    .option('--models-dir <dir>', 'directory whose .pt files requests may name (besides the shipped models)')
    .option('--device <device>', 'cpu or cuda[:N]', 'cpu')
    .option('--precision <p>', "the denoisers' forwards: fp32 (default) or bf16 (CPUs with AVX512_BF16 or AMX)")
    .option(
      '--threads <n>',
      "intra-op threads (default: libtorch's, all cores or OMP_NUM_THREADS), shared by the forwards running at once",
    )
    .option(
      '--max-batch <n>',
      'most rows per forward (default 32 on CPU, where a forward costs the same per row from ~16 rows on and a ' +
        'short one keeps small requests fast; 128 on CUDA)',
    )
    .option('--batch-window-us <µs>', 'longest wait of an idle model for more callers (0: none)', '1000')
    .option('--no-batching', 'every search calls the models alone (for comparison)')
    .option(
      '--parallel-forwards <n>',
      'forwards of one model at once, each on its own stream, sharing the threads (default: the cores on CPU, 1 on ' +
        'CUDA)',
    )
    .option(
      '--max-active <n>',
      'requests running at once (plus up to a quarter more that are each 4× smaller than all running)',
      '16',
    )
    .option('--max-queue <n>', 'requests waiting beyond those (more get 429)', '64')
    .option('--searches-per-request <n>', 'searches of one request running at once', '8')
    .option(
      '--memory-limit <bytes>',
      'ceiling on the estimated memory of running requests, e.g. 8g (default: half the RAM on CPU)',
    )
    .option('--max-body <bytes>', 'largest request body', '1m')
    .option('--max-request-nfe <n>', 'most NFE per request (n × budget × prompts)', '200000')
    .option('--preload <names>', 'models to load before listening, comma-separated (e.g. fashion-flow,classifier)')
    .option(
      '--shutdown-deadline <s>',
      'on SIGTERM: seconds requests in flight may take before they are cancelled',
      '30',
    )
    .option(
      '--token-file <file>',
      `bearer token every route but /healthz needs (or $${TOKEN_ENV}; never on the command line)`,
    )
    .option('--no-metrics-auth', 'with a token: let /metrics answer without it (for a scraper)')
    .option('--insecure', 'allow a --host other machines can reach without a token')
    .option('--ui', 'serve the playground page at / (default: on when --host is loopback)')
    .option('--no-ui', 'no page at /: the API only');
  addAllowRemoteFlag(command);
  addRemoteVerifierFlags(command)
    .addHelpText(
      'after',
      `
Endpoints: POST /v1/generate (JSON body = generate options; Accept: image/png for the grid),
POST|GET /v1/generate/stream (SSE progress), GET /v1/models[/<name>], GET /v1/schema, GET /healthz,
GET /metrics, and the playground page at / (docs/playground.md).
Statuses and headers: docs/engine-and-serve.md.

Examples:
  $ diffusion-search serve --port 8080
  $ curl -s localhost:8080/v1/generate -H 'content-type: application/json' -d '{"model":"gmm2d","budget":100,"n":2}'
  $ DS_TOKEN=$(cat token) diffusion-search serve --host 0.0.0.0
  $ curl -s localhost:8080/v1/generate -H "authorization: Bearer $(cat token)" -H 'content-type: application/json' \\
      -H 'accept: image/png' -d '{"class":"Shirt","budget":200}' > grid.png`,
    )
    .action(async (o: Record<string, string | boolean | undefined>) => {
      // Every start-up check before the engine: a bad flag costs no model loads.
      const host = String(o.host);
      const port = int('port', o.port, 0, 65535)!;
      if (o.modelsDir !== undefined) checkModelsDir(String(o.modelsDir));
      const token = readToken(o.tokenFile === undefined ? undefined : String(o.tokenFile));
      checkExposure(host, token !== null, !!o.insecure);
      const allowRemoteVerifiers = parseAllowedOrigins(o.allowRemoteVerifiers);
      const remoteVerifier = remoteVerifierOptions(o);
      const onCpu = String(o.device).startsWith('cpu');
      const engine = createEngine({
        device: String(o.device),
        precision: precisionFlag(o.precision),
        threads: int('threads', o.threads, 1),
        maxBatch: int('max-batch', o.maxBatch, 1) ?? (onCpu ? 32 : 128),
        batchWindowUs: int('batch-window-us', o.batchWindowUs, 0),
        batching: o.batching !== false,
        parallelForwards: int('parallel-forwards', o.parallelForwards, 1),
        maxActive: int('max-active', o.maxActive, 1),
        maxQueue: int('max-queue', o.maxQueue, 0),
        searchesPerRequest: int('searches-per-request', o.searchesPerRequest, 1),
        memoryLimit: o.memoryLimit === undefined ? undefined : parseBytes(String(o.memoryLimit), '--memory-limit'),
      });
      const server = createServer(engine, {
        modelsDir: o.modelsDir === undefined ? undefined : String(o.modelsDir),
        maxBodyBytes: parseBytes(String(o.maxBody), '--max-body'),
        maxRequestNfe: int('max-request-nfe', o.maxRequestNfe, 1),
        allowRemoteVerifiers,
        token,
        metricsAuth: o.metricsAuth !== false,
        ui: o.ui === undefined ? isLoopback(host) : o.ui !== false,
      });
      engine.models.remoteVerifier = remoteVerifier;
      for (const name of String(o.preload ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)) {
        const model = server.modelPath(name, '--preload');
        const kind = shipped.find((m) => m.name === name)?.kind;
        const h = await (kind === 'verifier' || name === 'self'
          ? engine.models.verifier(model, 64)
          : engine.models.denoiser(resolveModel(model).file));
        h.release(); // stays loaded: the cache keeps models no request holds
      }
      const deadline = Number(o.shutdownDeadline) * 1000;
      const addr = await server.listen(port, host).catch(async (e: unknown) => {
        await engine.close();
        throw listenError(e, host, port);
      });
      const batching = engine.batching
        ? `on, up to ${engine.maxBatch} rows × ${engine.parallelForwards} forwards at once`
        : 'off';
      process.stdout.write(
        `listening on http://${addr.address}:${addr.port} (batching ${batching}, ` +
          `${engine.threads.threads} threads, OMP_WAIT_POLICY=${engine.threads.waitPolicy})\n`,
      );
      if (server.ui) process.stdout.write(pageLine(addr.address, addr.port, token !== null));
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (sig: string) => {
          if (stopping) return;
          stopping = true;
          process.stderr.write(
            `diffusion-search serve: ${sig}: not accepting new requests; ${engine.metrics().activeRequests} in ` +
              `flight get up to ${deadline / 1000} s\n`,
          );
          void server.close(deadline).then(resolve, (e) => {
            process.stderr.write(`diffusion-search serve: shutdown: ${(e as Error).message}\n`);
            resolve();
          });
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
      process.stderr.write('diffusion-search serve: stopped\n');
      process.exitCode = 0;
    });
}
