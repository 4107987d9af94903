/** `diffusion-search generate`: run the main job and write report.json, samples.npy, grid.png. */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { DiffusionSearchError } from '../errors';
import { generate, type GenerateOptions, type GenerateResult } from '../generate';
import { DEFAULTS } from '../request/defaults';
import { asOptions, resolveRequest } from '../request/resolve';
import { writeFileAtomic } from '../io/atomic';
import { writeSampleFiles } from '../io/sample-files';
import type { ReportFiles } from '../request/report';
import { algorithms } from '../search';
import { HttpVerifier } from '../verifiers/http';
import { addAlgorithmFlags, collectAlgorithmOptions } from './algorithm-flags';
import { addRemoteVerifierFlags, remoteVerifierOptions } from './remote-verifier-flags';
import { checkConfigKeys, readConfig } from './options';
import { ProgressBar } from './progress';
import { SIGNALS, exitCodeOf } from './signals';

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function addGenerate(program: Command): void {
  const command = program
    .command('generate')
    .description('search for samples the verifier prefers and write report.json, samples.npy and grid.png')
    .option('--model <name|path>', 'shipped model name or TorchScript file', DEFAULTS.model)
    .option(
      '--class <name|index>',
      "class to condition on: a name or index from the model's card (`diffusion-search models` lists them)",
      '0',
    )
    .option('--prompt <text>', 'prompt of a text-conditioned model (repeat for several: n searches each)', collect)
    .option('--prompts <file>', 'prompts, one per line (blank lines and # comments skipped)')
    .option(
      '--negative-prompt <text>',
      'the unconditional branch of guidance (text-conditioned models; needs --guidance > 1)',
    )
    .option('--algorithm <name>', `one of ${Object.keys(algorithms).join(', ')}`, DEFAULTS.algorithm)
    .option('--budget <nfe>', 'NFE per sample', String(DEFAULTS.budget))
    .option('--n <samples>', 'samples (one search each) per prompt', String(DEFAULTS.n))
    .option(
      '--keep <k>',
      'keep the k best distinct samples of each search (samples.npy holds n·k rows)',
      String(DEFAULTS.keep),
    )
    .option(
      '--diversity <λ>',
      'diverse top-k: keep by reward − λ·similarity (greedy MMR over every distinct sample scored)',
      undefined,
    )
    .option('--alpha <α>', 'target temperature: particles and best-of-n sample p·exp(r/α) instead of the best')
    .option('--seed <int>', 'seed: the same seed gives the same samples', String(DEFAULTS.seed))
    .option('--out <dir>', 'output directory', 'out')
    .option(
      '--verifier <name|path>',
      'verifier (repeat for a rank ensemble): classifier, realism, detail, self, oracle, or a file',
      collect,
    )
    .option('--steps <n>', 'denoising steps of the schedule', String(DEFAULTS.steps))
    .option(
      '--schedule <name>',
      "uniform, shifted, karras, or adaptive (a Time Prediction Module picks each sample's steps)",
      DEFAULTS.schedule,
    )
    .option('--tpm <name|path>', 'the Time Prediction Module of --schedule adaptive', DEFAULTS.tpm)
    .option('--max-steps <n>', 'most steps per sample on the adaptive schedule')
    .option(
      '--tpm-solver <name>',
      'step rule of the adaptive schedule: euler or ab2 (default: the one the module was trained with)',
    )
    .option('--shift <s>', 'time shift of the shifted schedule')
    .option('--sampler <name>', 'euler, heun or sde (particles and beam need sde)')
    .option('--eta <η>', 'η of the sde sampler', undefined)
    .option('--guidance <w>', 'classifier-free guidance weight', String(DEFAULTS.guidance))
    .option('--device <device>', 'cpu or cuda[:N]', DEFAULTS.device)
    .option('--precision <p>', "the denoiser's forwards: fp32 (default) or bf16 (CPUs with AVX512_BF16 or AMX)")
    .option('--max-batch <n>', 'largest batch through a model (default 32 on CPU, 128 on CUDA)');
  addAlgorithmFlags(command);
  addRemoteVerifierFlags(command);
  command
    .option('--config <file.json>', 'any of these options as JSON, and algorithmOptions (flags override the file)')
    .option('--no-eval', 'skip the eval/ classifier metrics')
    .option('--json', 'no progress bar; print the report as one JSON document')
    .addHelpText(
      'after',
      `
Algorithm options (--elites, --beams, ...) belong to one algorithm each; another algorithm's is refused.

--class takes a name or index: 'diffusion-search models' lists the classes of every shipped model
(and the file each loads from); for your own model, the classes in its card.

Examples:
  $ diffusion-search generate --class Shirt --algorithm evosearch --budget 500 --n 8 --out out/shirt
  $ diffusion-search generate --algorithm best-of-n --budget 200 --verifier classifier --verifier realism
  $ diffusion-search generate --model gmm2d --algorithm beam --budget 2000 --n 16 --out out/gmm
  $ diffusion-search generate --config run.json --seed 7 --json`,
    )
    .action(generateAction);
}

/** The generate command: flags → request → generate() → report.json, samples.npy, grid.png (and latents.npy). */
async function generateAction(flags: Record<string, unknown>, cmd: Command): Promise<void> {
  // Flags the user typed win over the config file, which wins over defaults.
  const file = readConfig(flags.config as string | undefined);
  checkConfigKeys(file, cmd, flags.config as string);
  const get = (key: string) => (cmd.getOptionValueSource(key) === 'cli' ? flags[key] : (file[key] ?? flags[key]));
  const out = String(get('out'));
  const options = collectOptions(get);
  // --no-eval is a negated flag (default true): only an explicit flag or config entry counts.
  options.eval = cmd.getOptionValueSource('eval') === 'cli' ? false : (file.eval as boolean | undefined);
  options.verifier = withRemoteSettings(options, get);
  const created = prepareOut(out);
  const json = !!get('json');
  const bar = ProgressBar.enabled(json) ? new ProgressBar() : null;
  // SIGINT / SIGTERM: the first stops the search (the samples finished are written, then exit
  // 130 / 143); a second one while searching exits at once, writing nothing. While the outputs
  // are written, signals wait for the writes to end, so no file is left half written or
  // temporary. (After this command, ./signals exits with the code.)
  const ctl = new AbortController();
  let signalled: NodeJS.Signals | null = null;
  let writing = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled && !writing) process.exit(exitCodeOf(signalled));
    signalled ??= sig;
    if (!writing) ctl.abort(new Error(sig));
    process.exitCode = exitCodeOf(signalled);
  };
  for (const sig of SIGNALS) process.on(sig, onSignal);
  try {
    await run();
  } finally {
    for (const sig of SIGNALS) process.removeListener(sig, onSignal);
  }
  async function run() {
    let result: GenerateResult;
    try {
      result = await generate(options, {
        signal: ctl.signal,
        onProgress: (p) =>
          bar?.update(p.totalNfe, p.totalBudget, `sample ${p.sample + 1}/${p.samples}  best ${p.best.toFixed(3)}`),
      });
    } catch (e) {
      bar?.done();
      removeCreated(created); // nothing was written: leave no empty --out behind
      // Ctrl-C before any sample finished: nothing to write, but still an interruption (130), not bad input.
      if (signalled && e instanceof DiffusionSearchError && e.code === 'ABORTED') {
        process.stderr.write('diffusion-search: interrupted before any sample finished; nothing written\n');
        process.exitCode = exitCodeOf(signalled);
        return;
      }
      throw e;
    }
    writing = true;
    // The bar ends at what was really used (adaptive rollouts take fewer steps than planned).
    const used = result.report.nfe_used as number;
    bar?.update(used, used, `${result.results.length} sample(s) done`, true);
    bar?.done();
    const files = writeOutputs(out, result);
    if (json) process.stdout.write(JSON.stringify({ ...result.report, files }) + '\n');
    else printSummary(out, result, files, signalled);
    writing = false;
    if (signalled) process.exitCode = exitCodeOf(signalled);
  }
}

/**
 * samples.npy, latents.npy (a latent model), grid.png, clip-<row>.gif (video) and report.json,
 * which names them, in `out`, each written atomically.
 */
function writeOutputs(out: string, result: GenerateResult): ReportFiles {
  const files = writeSampleFiles(out, result);
  const card = result.report as { unknown_words: string[][] | null };
  card.unknown_words?.forEach(
    (w, i) =>
      w.length &&
      process.stderr.write(
        `diffusion-search: warning: prompt ${i + 1}: words not in the text encoder's vocabulary: ${w.join(', ')}\n`,
      ),
  );
  writeFileAtomic(path.join(out, 'report.json'), JSON.stringify({ ...result.report, files }, null, 2) + '\n');
  return files;
}

/** The few lines generate prints without --json: samples, NFE, time, mean reward, eval, files. */
function printSummary(out: string, result: GenerateResult, files: ReportFiles, signalled: NodeJS.Signals | null): void {
  const r = result.report as {
    model: string;
    n: number;
    nfe_used: number;
    wall_seconds: number;
    eval: { accuracy: number; fid: number | null } | null;
  };
  const rows = result.shape[0] === r.n ? '' : ` (${result.shape[0]} kept)`;
  console.log(
    `${r.model}: ${r.n} sample(s)${rows}, ${r.nfe_used} NFE, ${r.wall_seconds.toFixed(1)} s; mean reward ` +
      `${mean(result.rewards).toFixed(4)}`,
  );
  if (r.eval)
    console.log(
      `eval classifier: accuracy ${(100 * r.eval.accuracy).toFixed(1)} %, Fréchet distance ` +
        `${r.eval.fid?.toFixed(2) ?? 'n/a'}`,
    );
  const gifs = files.animations;
  const clips = gifs.length ? `, ${gifs.length > 2 ? `${gifs[0]} … ${gifs[gifs.length - 1]}` : gifs.join(', ')}` : '';
  const latents = files.latents ? ', latents.npy' : '';
  console.log(`wrote ${path.join(out, 'report.json')}, samples.npy${latents}, grid.png${clips}`);
  if (!result.complete)
    console.log(`interrupted: wrote the samples finished before ${signalled === 'SIGTERM' ? 'SIGTERM' : 'Ctrl-C'}`);
}

/** --prompt values (or a config's string / array) followed by the lines of --prompts. */
export function readPrompts(flag: unknown, file: unknown): string[] | undefined {
  const list = flag === undefined ? [] : Array.isArray(flag) ? flag.map(String) : [String(flag)];
  if (file !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(String(file), 'utf8');
    } catch (e) {
      throw new DiffusionSearchError(`cannot read --prompts '${file}': ${(e as Error).message}`, 'ARGUMENT', {
        cause: e,
      });
    }
    const lines = text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    if (!lines.length) throw new DiffusionSearchError(`--prompts '${file}' holds no prompt`, 'ARGUMENT');
    list.push(...lines);
  }
  return list.length ? list : undefined;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** Creates --out (and missing parents) and checks it is writable; returns the directories it created. */
export function prepareOut(dir: string): string[] {
  const created: string[] = [];
  try {
    // One level at a time: Node's recursive mkdir can spin forever on special file systems (/proc).
    const missing: string[] = [];
    for (let d = path.resolve(dir); !fs.existsSync(d); d = path.dirname(d)) missing.unshift(d);
    for (const d of missing) {
      fs.mkdirSync(d);
      created.push(d);
    }
    if (!fs.statSync(dir).isDirectory()) throw new Error('not a directory');
    fs.accessSync(dir, fs.constants.W_OK);
    return created;
  } catch (e) {
    removeCreated(created);
    throw new DiffusionSearchError(`cannot write to --out '${dir}': ${(e as Error).message}`, 'ARGUMENT', { cause: e });
  }
}

/** Removes the directories prepareOut created, deepest first, while they are empty. */
function removeCreated(created: string[]): void {
  for (const d of [...created].reverse()) {
    try {
      fs.rmdirSync(d);
    } catch {
      return; // not empty (or gone): leave it and its parents
    }
  }
}

/** URL verifiers as HttpVerifiers with the --verifier-* settings (the engine builds them with defaults). */
function withRemoteSettings(options: GenerateOptions, get: (key: string) => unknown): GenerateOptions['verifier'] {
  const keys = [
    'verifierTimeout',
    'verifierRetries',
    'verifierBackoff',
    'verifierRows',
    'verifierConcurrency',
    'verifierHeadersFile',
  ];
  const rv = remoteVerifierOptions(Object.fromEntries(keys.map((k) => [k, get(k)])));
  return options.verifier?.map((v) =>
    typeof v === 'string' && /^https?:\/\//.test(v)
      ? new HttpVerifier(v, { ...rv, maxRows: rv.maxRows ?? options.maxBatch })
      : v,
  );
}

/**
 * The request of the flags (and --config), checked by the resolver with messages that name the
 * flags; only what was given (or has a CLI default) is set, the engine fills the rest.
 */
export function collectOptions(get: (key: string) => unknown): GenerateOptions {
  const verifier = get('verifier');
  const raw: Record<string, unknown> = {
    model: get('model'),
    class: get('class'),
    prompt: readPrompts(get('prompt'), get('prompts')),
    negativePrompt: get('negativePrompt'),
    algorithm: get('algorithm'),
    budget: get('budget'),
    n: get('n'),
    keep: get('keep'),
    diversity: get('diversity'),
    alpha: get('alpha'),
    seed: get('seed'),
    verifier: verifier === undefined ? undefined : Array.isArray(verifier) ? verifier.map(String) : [String(verifier)],
    steps: get('steps'),
    schedule: get('schedule'),
    tpm: get('tpm'),
    maxSteps: get('maxSteps'),
    tpmSolver: get('tpmSolver'),
    shift: get('shift'),
    sampler: get('sampler'),
    eta: get('eta'),
    guidance: get('guidance'),
    device: get('device'),
    precision: get('precision'),
    maxBatch: get('maxBatch'),
  };
  for (const k of ['model', 'class', 'negativePrompt', 'tpm', 'device'] as const)
    if (raw[k] !== undefined) raw[k] = String(raw[k]);
  const resolved = resolveRequest(raw, null, { entrance: 'cli' });
  const typed = asOptions(resolved) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(raw)) if (raw[k] !== undefined) out[k] = typed[k];
  out.algorithmOptions = collectAlgorithmOptions(resolved.algorithm, get, get('algorithmOptions'));
  // Rules across the request and the algorithm's options (alpha beside --lambda) name flags too.
  resolveRequest({ ...raw, algorithmOptions: out.algorithmOptions }, null, { entrance: 'cli' });
  return out as GenerateOptions;
}
