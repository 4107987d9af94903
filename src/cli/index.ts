#!/usr/bin/env node
/** The diffusion-search command line. */
import { Command } from 'commander';
import { info, packageVersion } from '../info';
import { runMain } from './run';

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
    console.log(`threads          intra-op ${i.threads.intraOp}, inter-op ${i.threads.interOp}, hardware ${i.threads.hardware}`);
  });

void runMain(program);
