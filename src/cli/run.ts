/** Runs the CLI: bad input exits with code 2 and one line naming the problem and the fix. */
import type { Command } from 'commander';
import { DiffusionSearchError } from '../errors';

export async function runMain(program: Command, argv: string[] = process.argv): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (e) {
    const verbose = argv.includes('--verbose');
    if (e instanceof DiffusionSearchError) {
      process.stderr.write(`diffusion-search: error [${e.code}]: ${e.message}\n`);
      if (verbose && e.stack) process.stderr.write(e.stack + '\n');
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`diffusion-search: internal error: ${(e as Error)?.message ?? String(e)}\n`);
    if (verbose && (e as Error)?.stack) process.stderr.write((e as Error).stack + '\n');
    process.exitCode = 1;
  }
}
