/** Runs the CLI: bad input exits with code 2 and one line naming the problem and the fix. */
import { CommanderError, type Command } from 'commander';
import { DiffusionSearchError } from '../errors';

export async function runMain(program: Command, argv: string[] = process.argv): Promise<void> {
  // The parser's own errors (unknown command or option, a missing value) are bad input too: exit 2,
  // one line, and where to look. Help and --version still exit 0.
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program))
    c.exitOverride().configureOutput({
      outputError: (msg, write) =>
        write(
          `diffusion-search: ${msg.trim().replace(/^error: /, 'error [ARGUMENT]: ')} (see ${commandPath(c)} --help)\n`,
        ),
    });
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // No command (e.g. `diffusion-search --verbose`, `diffusion-search bench`): commander prints the
      // usage and fails without an error line; bad input should still say so, with its code.
      if (e.code === 'commander.help' && e.exitCode !== 0)
        process.stderr.write(
          'diffusion-search: error [ARGUMENT]: no command given (the usage above lists the commands)\n',
        );
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
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

function commandPath(c: Command): string {
  const names: string[] = [];
  for (let p: Command | null = c; p; p = p.parent) names.unshift(p.name());
  return names.join(' ');
}
