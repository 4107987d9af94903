/** `diffusion-search eval` and `models`: judge any samples; list the shipped models and their cards. */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { Evaluator } from '../eval/metrics';
import { readNpy } from '../io/npy';
import { resolveClass } from '../generate';
import { loadModule } from '../module';
import { packageRoot } from '../native';
import { shipped } from '../models/registry';
import { DiffusionSearchError } from '../errors';

export function addEval(program: Command): void {
  program
    .command('eval <samples.npy>')
    .description(
      'metrics of the eval/ classifier (never a search verifier): accuracy, log-probability, Inception-style ' +
        'score, Fréchet distance',
    )
    .requiredOption('--class <name|index>', 'the class the samples are meant to show')
    .option('--json', 'print one JSON object')
    .addHelpText(
      'after',
      '\nExamples:\n  $ diffusion-search eval out/samples.npy --class Shirt\n  $ diffusion-search eval ' +
        'out/samples.npy --class 6 --json',
    )
    .action(async (file: string, o: { class: string; json?: boolean }) => {
      const { data, shape } = readNpy(file);
      if (shape.length !== 4 || shape[1] !== 1 || shape[2] !== 28 || shape[3] !== 28)
        throw new DiffusionSearchError(
          `'${file}' has shape [${shape}]; the eval classifier takes [n, 1, 28, 28]`,
          'SHAPE',
        );
      const ev = await Evaluator.load();
      const names = (ev.module.card?.classes as string[] | undefined) ?? undefined;
      const cls = resolveClass(o.class, names);
      const r = await ev.evaluate(data, shape, new Array(shape[0]).fill(cls), names);
      if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else
        console.log(
          `${shape[0]} samples of '${names?.[cls] ?? cls}': accuracy ${(100 * r.accuracy).toFixed(1)} %, mean ` +
            `log-prob ${r.mean_log_prob.toFixed(3)}, ` +
            `Inception-style score ${r.inception_score.toFixed(3)}, Fréchet distance ` +
            `${r.fid?.toFixed(2) ?? 'n/a (needs 2+ samples)'}`,
        );
    });

  program
    .command('models')
    .description('the shipped models: kind, installed file, sample shape and classes (--json: their cards)')
    .option('--json', 'print the cards as JSON')
    .addHelpText('after', '\nExamples:\n  $ diffusion-search models\n  $ diffusion-search models --json')
    .action(async (o: { json?: boolean }) => {
      const list = [];
      for (const m of shipped) {
        const file = path.join(packageRoot, m.file);
        if (!fs.existsSync(file)) {
          list.push({ name: m.name, file: m.file, path: file, kind: m.kind, present: false, card: null });
          continue;
        }
        const mod = await loadModule(file);
        list.push({
          name: m.name,
          file: m.file,
          path: file,
          kind: m.kind,
          present: true,
          size_bytes: fs.statSync(file).size,
          card: mod.card,
        });
        mod.dispose();
      }
      if (o.json) return void process.stdout.write(JSON.stringify(list, null, 2) + '\n');
      for (const m of list) {
        const c = m.card as { classes?: string[]; sample_shape?: number[]; null_class?: number } | null;
        const shape = c?.sample_shape ? `  shape [${c.sample_shape}]` : '';
        console.log(`${m.name.padEnd(14)} ${m.kind.padEnd(9)} ${m.present ? m.path : `missing (${m.path})`}${shape}`);
        // A denoiser's classes by index, as --class takes them (not the null class: guidance uses it).
        const classes = (m.kind === 'denoiser' ? (c?.classes ?? []) : [])
          .map((name, i) => `${i} ${name}`)
          .filter((_, i) => i !== c?.null_class);
        if (classes.length) console.log(`${''.padEnd(25)}classes: ${classes.join(', ')}`);
      }
    });
}
