/**
 * The diffusion-search command line as a commander program: built fresh per run (commander keeps
 * parsed values on the Command).
 */
import { Command } from 'commander';
import { info, packageVersion } from '../info';
import { addGenerate } from './generate-command';
import { addSweep } from './sweep-command';
import { addEval } from './eval-command';
import { int, precisionFlag } from './options';
import { benchKernels, formatKernelBench, DEFAULT_SIZES } from '../bench/kernels';
import { benchSearch, formatSearchBench } from '../bench/search';
import { benchModel, formatModelBench, DEFAULT_BATCHES } from '../bench/model';
import { benchE2e, formatE2e } from '../bench/e2e';
import { DiffusionSearchError } from '../errors';

// Over 80 lines by design: a declarative list of commands, flags and help text, one line
// each, that reads top to bottom as the CLI's surface; splitting it would scatter that list.
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('diffusion-search')
    .description('Test-time scaling for diffusion and flow models by search')
    .version(packageVersion())
    .option('--verbose', 'print stack traces on errors');

  program
    .command('info')
    .description('package version, libtorch version, CUDA build and availability, thread counts')
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nExamples:\n  $ diffusion-search info\n  $ diffusion-search info --json')
    .action((opts: { json?: boolean }) => {
      const i = info();
      if (opts.json) {
        process.stdout.write(JSON.stringify(i, null, 2) + '\n');
        return;
      }
      const yes = (b: boolean) => (b ? 'yes' : 'no');
      console.log(`diffusion-search ${i.version} (Node ${i.node})`);
      console.log(`libtorch         ${i.torch.version} (CUDA build: ${yes(i.torch.cuda)})`);
      console.log(
        `CUDA kernels     compiled: ${yes(i.cuda.kernelsCompiled)}, linked: ${yes(i.cuda.kernelsLinked)}, ` +
          `device available: ${yes(i.cuda.available)} (${i.cuda.deviceCount})`,
      );
      if (i.cuda.off) console.log(`CUDA off         ${i.cuda.off}`);
      console.log(
        `threads          intra-op ${i.threads.intraOp}, inter-op ${i.threads.interOp}, hardware ${i.threads.hardware}`,
      );
      console.log(`bf16 forwards    ${i.bf16.available ? 'yes (--precision bf16)' : `no: ${i.bf16.why}`}`);
      console.log(
        `binary           ${i.native.kind}${i.native.package ? ` from ${i.native.package}` : ''}: ${i.native.file} ` +
          `(built by ${i.native.build.tool})`,
      );
      console.log(`                 ${i.native.reason}`);
    });

  addGenerate(program);
  addSweep(program);
  addEval(program);
  (require('./serve-command') as typeof import('./serve-command')).addServe(program);
  (require('./queue-commands') as typeof import('./queue-commands')).addQueueCommands(program);

  const bench = program.command('bench').description('benchmarks of the native kernels and of whole searches');
  bench
    .command('kernels')
    .description('time every kernel against libtorch eager ops and a plain copy, 2^16 to 2^24 elements')
    .option('--json', 'print one JSON object: per op and size, gbps, vs_torch and vs_copy')
    .option('--device <device>', "'cpu' or 'cuda[:N]'", 'cpu')
    .option('--sizes <list>', 'comma-separated element counts', DEFAULT_SIZES.join(','))
    .option('--min-seconds <s>', 'time spent per measurement', '0.3')
    .addHelpText(
      'after',
      '\nExamples:\n  $ diffusion-search bench kernels\n  $ diffusion-search bench kernels --json --sizes ' +
        '65536,1048576',
    )
    .action(async (opts: { json?: boolean; device: string; sizes: string; minSeconds: string }) => {
      const sizes = opts.sizes.split(',').map((s) => Number(s.trim()));
      if (sizes.some((s) => !Number.isInteger(s) || s < 1024))
        throw new DiffusionSearchError(`--sizes: expected integers >= 1024, got '${opts.sizes}'`, 'ARGUMENT');
      const minSeconds = Number(opts.minSeconds);
      // Bounded: --min-seconds 1e400 (Infinity) would measure forever.
      if (!(minSeconds > 0 && minSeconds <= 60))
        throw new DiffusionSearchError(
          `--min-seconds must be a positive number up to 60, got '${opts.minSeconds}'`,
          'ARGUMENT',
        );
      const report = await benchKernels({ sizes, device: opts.device, minSeconds });
      process.stdout.write((opts.json ? JSON.stringify(report, null, 2) : formatKernelBench(report)) + '\n');
    });

  bench
    .command('search')
    .description(
      'EvoSearch and best-of-N on a shipped model: wall time, time in the model and verifiers, orchestration overhead',
    )
    .option('--json', 'print one JSON object')
    .option('--model <name>', 'shipped model', 'fashion-flow')
    .option('--budget <nfe>', 'NFE per search', '1000')
    .option('--steps <n>', 'Euler steps', '10')
    .option('--device <device>', "'cpu' or 'cuda[:N]'", 'cpu')
    .addHelpText(
      'after',
      '\nExamples:\n  $ diffusion-search bench search\n  $ diffusion-search bench search --model gmm2d --budget ' +
        '4000 --json',
    )
    .action(async (opts: { json?: boolean; model: string; budget: string; steps: string; device: string }) => {
      const budget = int('budget', opts.budget, 1)!,
        steps = int('steps', opts.steps, 1)!;
      const r = await benchSearch({ model: opts.model, budget, steps, device: opts.device });
      process.stdout.write((opts.json ? JSON.stringify(r, null, 2) : formatSearchBench(r)) + '\n');
    });

  bench
    .command('model')
    .description(
      "the addon's forward of a TorchScript model against python3-torch's forward of the same file; --e2e: " +
        'best-of-N against a plain PyTorch loop',
    )
    .option('--json', 'print one JSON object')
    .option(
      '--model <name>',
      'shipped model or TorchScript file: forward(x [B,1,28,28], sigma [B], class int64 [B])',
      'fashion-flow',
    )
    .option('--batches <list>', 'comma-separated batch sizes', DEFAULT_BATCHES.join(','))
    .option('--threads <n>', 'intra-op threads of both runtimes', '1')
    .option('--repeats <n>', 'timed forwards per batch (after 3 warm-up forwards)', '20')
    .option('--precision <p>', 'bf16: also the addon in bf16 (and, with --e2e, generate in bf16) against fp32')
    .option('--rounds <n>', 'rounds of python then addon, their samples pooled', '1')
    .option(
      '--e2e',
      'instead: generate --algorithm best-of-n --budget 500 --n 4 --steps 10 --class Shirt against ' +
        'bench/torch_search.py',
    )
    .option('--python <path>', 'the Python with PyTorch (default: $PYTHON or python3)')
    .addHelpText(
      'after',
      '\nExamples:\n  $ diffusion-search bench model\n  $ diffusion-search bench model --threads 2 --json\n  $ ' +
        'diffusion-search bench model --e2e --threads 2 --repeats 3',
    )
    .action(
      async (opts: {
        json?: boolean;
        model: string;
        batches: string;
        threads: string;
        repeats: string;
        e2e?: boolean;
        python?: string;
        precision?: string;
        rounds: string;
      }) => {
        const precision = precisionFlag(opts.precision);
        const threads = int('threads', opts.threads, 1)!,
          repeats = int('repeats', opts.repeats, 1)!;
        if (opts.e2e) {
          const r = await benchE2e({ threads, repeats, python: opts.python, precision });
          process.stdout.write((opts.json ? JSON.stringify(r, null, 2) : formatE2e(r)) + '\n');
          return;
        }
        const batches = opts.batches.split(',').map((s) => int('batches', s.trim(), 1)!);
        const rounds = int('rounds', opts.rounds, 1)!;
        const r = await benchModel({
          model: opts.model,
          batches,
          threads,
          repeats,
          python: opts.python,
          precision,
          rounds,
        });
        process.stdout.write((opts.json ? JSON.stringify(r, null, 2) : formatModelBench(r)) + '\n');
      },
    );
  return program;
}
