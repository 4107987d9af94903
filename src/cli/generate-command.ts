/** `diffusion-search generate`: run the main job and write report.json, samples.npy, grid.png. */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { DiffusionSearchError } from '../errors';
import { DEFAULT_STEPS, generate, type GenerateOptions } from '../generate';
import { writeFileAtomic } from '../io/atomic';
import { gridPng } from '../io/png';
import { writeNpy } from '../io/npy';
import { algorithms, type AlgorithmName } from '../search';
import { int, intList, num, oneOf, readConfig } from './options';
import { ProgressBar } from './progress';
import { SIGNALS, exitCodeOf } from './signals';

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function addGenerate(program: Command): void {
  program
    .command('generate')
    .description('search for samples the verifier prefers and write report.json, samples.npy and grid.png')
    .option('--model <name|path>', 'shipped model name or TorchScript file', 'fashion-flow')
    .option('--class <name|index>', "class to condition on: a name or index from the model's card (`diffusion-search models` lists them)", '0')
    .option('--prompt <text>', 'prompt of a text-conditioned model (repeat for several: n searches each)', collect)
    .option('--prompts <file>', 'prompts, one per line (blank lines and # comments skipped)')
    .option('--negative-prompt <text>', 'the unconditional branch of guidance (text-conditioned models)')
    .option('--algorithm <name>', `one of ${Object.keys(algorithms).join(', ')}`, 'evosearch')
    .option('--budget <nfe>', 'NFE per sample', '500')
    .option('--n <samples>', 'samples (one search each)', '4')
    .option('--keep <k>', 'keep the k best distinct samples of each search (samples.npy holds n·k rows)', '1')
    .option('--seed <int>', 'seed: the same seed gives the same samples', '0')
    .option('--out <dir>', 'output directory', 'out')
    .option('--verifier <name|path>', 'verifier (repeat for a rank ensemble): classifier, realism, detail, self, oracle, or a file', collect)
    .option('--steps <n>', 'denoising steps of the schedule', String(DEFAULT_STEPS))
    .option('--schedule <name>', 'uniform, shifted, karras, or adaptive (a Time Prediction Module picks each sample\'s steps)', 'uniform')
    .option('--tpm <name|path>', 'the Time Prediction Module of --schedule adaptive', 'tpm')
    .option('--max-steps <n>', 'most steps per sample on the adaptive schedule')
    .option('--tpm-solver <name>', 'step rule of the adaptive schedule: euler or ab2 (default: the one the module was trained with)')
    .option('--shift <s>', 'time shift of the shifted schedule')
    .option('--sampler <name>', 'euler, heun or sde (particles and beam need sde)')
    .option('--eta <η>', 'η of the sde sampler', undefined)
    .option('--guidance <w>', 'classifier-free guidance weight', '1')
    .option('--device <device>', 'cpu or cuda[:N]', 'cpu')
    .option('--max-batch <n>', 'largest batch through a model')
    .option('--population <sizes>', 'evosearch: population-size schedule, e.g. 42,26,26,26,30')
    .option('--levels <indices>', 'evosearch: evolution schedule (schedule indices), e.g. 0,8,12,16')
    .option('--elites <n>', 'evosearch: elites kept per generation')
    .option('--beta <β>', 'evosearch: initial-noise mutation strength')
    .option('--tournament <fraction>', 'evosearch: fraction of the population per tournament')
    .option('--mutation <how>', 'evosearch: intermediate-state mutation, sde (keeps the noise level) or additive')
    .option('--score-by <how>', 'evosearch and paths: rollout or x0')
    .option('--neighbours <n>', 'zero-order: neighbours per round')
    .option('--tau <τ>', 'zero-order: cosine between pivot and neighbours')
    .option('--candidates <n>', 'paths: candidates kept (N)')
    .option('--copies <m>', 'paths: copies per candidate (M)')
    .option('--forward <steps>', 'paths: Δf in schedule steps')
    .option('--backward <steps>', 'paths: Δb in schedule steps (> Δf)')
    .option('--particles <k>', 'particles: number of particles')
    .option('--potential <p>', 'particles: max, add or diff')
    .option('--lambda <λ>', 'particles: potential temperature')
    .option('--resample-every <k>', 'particles: steps between resamplings')
    .option('--ess-threshold <f>', 'particles: resample when ESS < f·K')
    .option('--beams <b>', 'beam: beams kept')
    .option('--children <m>', 'beam: children per beam and step')
    .option('--scale-steps', 'baseline: spend the budget on denoising steps')
    .option('--config <file.json>', 'any of these options as JSON (flags override the file)')
    .option('--no-eval', 'skip the eval/ classifier metrics')
    .option('--json', 'no progress bar; print the report as one JSON document')
    .addHelpText(
      'after',
      `
--class takes a name or index: 'diffusion-search models' lists the classes of every shipped model
(and the file each loads from); for your own model, the classes in its card.

Examples:
  $ diffusion-search generate --class Shirt --algorithm evosearch --budget 500 --n 8 --out out/shirt
  $ diffusion-search generate --algorithm best-of-n --budget 200 --verifier classifier --verifier realism
  $ diffusion-search generate --model gmm2d --algorithm beam --budget 2000 --n 16 --out out/gmm
  $ diffusion-search generate --config run.json --seed 7 --json`,
    )
    .action(async (flags: Record<string, unknown>, cmd: Command) => {
      // Flags the user typed win over the config file, which wins over defaults.
      const file = readConfig(flags.config as string | undefined);
      const get = (key: string) => (cmd.getOptionValueSource(key) === 'cli' ? flags[key] : file[key] ?? flags[key]);
      const out = String(get('out'));
      const options = collectOptions(get);
      // --no-eval is a negated flag (default true): only an explicit flag or config entry counts.
      options.eval = cmd.getOptionValueSource('eval') === 'cli' ? false : (file.eval as boolean | undefined);
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
        let result;
        try {
          result = await generate(options, {
            signal: ctl.signal,
            onProgress: (p) => bar?.update(p.totalNfe, p.totalBudget, `sample ${p.sample + 1}/${p.samples}  best ${p.best.toFixed(3)}`),
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
        writeNpy(path.join(out, 'samples.npy'), result.samples, result.shape);
        if (result.latents) writeNpy(path.join(out, 'latents.npy'), result.latents.data, result.latents.shape);
        const card = result.report as { model: string; unknown_words: string[][] | null };
        writeFileAtomic(path.join(out, 'grid.png'), gridPng(result.samples, result.shape, result.valueRange ?? [-1, 1], 4));
        card.unknown_words?.forEach((w, i) => w.length && process.stderr.write(`diffusion-search: warning: prompt ${i + 1}: words not in the text encoder's vocabulary: ${w.join(', ')}\n`));
        writeFileAtomic(path.join(out, 'report.json'), JSON.stringify(result.report, null, 2) + '\n');
        if (json) process.stdout.write(JSON.stringify(result.report) + '\n');
        else {
          const r = result.report as { n: number; nfe_used: number; wall_seconds: number; eval: { accuracy: number; fid: number | null } | null };
          const rows = result.shape[0] === r.n ? '' : ` (${result.shape[0]} kept)`;
          console.log(`${card.model}: ${r.n} sample(s)${rows}, ${r.nfe_used} NFE, ${r.wall_seconds.toFixed(1)} s; mean reward ${mean(result.rewards).toFixed(4)}`);
          if (r.eval) console.log(`eval classifier: accuracy ${(100 * r.eval.accuracy).toFixed(1)} %, Fréchet distance ${r.eval.fid?.toFixed(2) ?? 'n/a'}`);
          console.log(`wrote ${path.join(out, 'report.json')}, samples.npy${result.latents ? ', latents.npy' : ''}, grid.png`);
          if (!result.complete) console.log(`interrupted: wrote the samples finished before ${signalled === 'SIGTERM' ? 'SIGTERM' : 'Ctrl-C'}`);
        }
        writing = false;
        if (signalled) process.exitCode = exitCodeOf(signalled);
      }
    });
}

/** --prompt values (or a config's string / array) followed by the lines of --prompts. */
function readPrompts(flag: unknown, file: unknown): string[] | undefined {
  const list = flag === undefined ? [] : Array.isArray(flag) ? flag.map(String) : [String(flag)];
  if (file !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(String(file), 'utf8');
    } catch (e) {
      throw new DiffusionSearchError(`cannot read --prompts '${file}': ${(e as Error).message}`, 'ARGUMENT', { cause: e });
    }
    const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
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

export function collectOptions(get: (key: string) => unknown): GenerateOptions {
  const algorithm = oneOf('algorithm', get('algorithm'), Object.keys(algorithms) as AlgorithmName[])!;
  const a: Record<string, unknown> = {};
  const set = (key: string, v: unknown) => v !== undefined && (a[key] = v);
  switch (algorithm) {
    case 'evosearch':
      set('population', intList('population', get('population')));
      set('levels', intList('levels', get('levels')));
      set('elites', int('elites', get('elites')));
      set('beta', num('beta', get('beta')));
      set('tournament', num('tournament', get('tournament')));
      set('scoreBy', oneOf('score-by', get('scoreBy'), ['rollout', 'x0']));
      set('mutation', oneOf('mutation', get('mutation'), ['sde', 'additive']));
      break;
    case 'zero-order':
      set('n', int('neighbours', get('neighbours'), 1));
      set('tau', num('tau', get('tau')));
      break;
    case 'paths':
      set('n', int('candidates', get('candidates'), 1));
      set('m', int('copies', get('copies'), 1));
      set('forward', int('forward', get('forward'), 1));
      set('backward', int('backward', get('backward'), 1));
      set('score', oneOf('score-by', get('scoreBy'), ['rollout', 'x0']));
      break;
    case 'particles':
      set('particles', int('particles', get('particles'), 1));
      set('potential', oneOf('potential', get('potential'), ['max', 'add', 'diff']));
      set('lambda', num('lambda', get('lambda')));
      set('interval', int('resample-every', get('resampleEvery'), 1));
      set('threshold', num('ess-threshold', get('essThreshold')));
      break;
    case 'beam':
      set('beams', int('beams', get('beams'), 1));
      set('children', int('children', get('children'), 1));
      break;
    case 'baseline':
      set('scaleSteps', get('scaleSteps') ? true : undefined);
      break;
  }
  const verifier = get('verifier');
  const prompts = readPrompts(get('prompt'), get('prompts'));
  return {
    model: String(get('model')),
    class: get('class') as string,
    prompt: prompts,
    negativePrompt: get('negativePrompt') === undefined ? undefined : String(get('negativePrompt')),
    algorithm,
    budget: int('budget', get('budget'), 1),
    n: int('n', get('n'), 1),
    keep: int('keep', get('keep'), 1),
    seed: int('seed', get('seed'), 0, Number.MAX_SAFE_INTEGER),
    verifier: verifier === undefined ? undefined : Array.isArray(verifier) ? verifier.map(String) : [String(verifier)],
    steps: int('steps', get('steps'), 1),
    schedule: oneOf('schedule', get('schedule'), ['uniform', 'shifted', 'karras', 'adaptive']),
    tpm: get('tpm') === undefined ? undefined : String(get('tpm')),
    maxSteps: int('max-steps', get('maxSteps'), 1),
    tpmSolver: oneOf('tpm-solver', get('tpmSolver'), ['euler', 'ab2']),
    shift: num('shift', get('shift')),
    sampler: oneOf('sampler', get('sampler'), ['euler', 'heun', 'sde']),
    eta: num('eta', get('eta')),
    guidance: num('guidance', get('guidance')),
    device: String(get('device')),
    maxBatch: int('max-batch', get('maxBatch'), 1),
    algorithmOptions: a,
  };
}
