/**
 * The CLI's algorithm flags, generated from each algorithm's option schema
 * (src/search/<algorithm>.options.ts): one flag per name, shared by the algorithms that take it
 * (--score-by: evosearch's scoreBy and paths' score), with the help text the schemas give.
 */
import type { Command } from 'commander';
import { DiffusionSearchError } from '../errors';
import { checkAlgorithmOptions } from '../request/resolve';
import { flagOf, type OptionSpec } from '../request/schema';
import { algorithms, type AlgorithmName } from '../search';

export interface AlgorithmFlag {
  /** The flag without dashes, and commander's attribute name for it. */
  flag: string;
  attr: string;
  /** The algorithms that take it, with their option key and spec. */
  owners: Array<{ algorithm: AlgorithmName; key: string; spec: OptionSpec }>;
}

const camel = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

export function algorithmFlags(): AlgorithmFlag[] {
  const byFlag = new Map<string, AlgorithmFlag>();
  for (const [algorithm, def] of Object.entries(algorithms) as Array<
    [AlgorithmName, (typeof algorithms)[AlgorithmName]]
  >) {
    for (const [key, spec] of Object.entries(def.options as Record<string, OptionSpec>)) {
      const flag = flagOf(key, spec);
      const f = byFlag.get(flag) ?? { flag, attr: camel(flag), owners: [] };
      f.owners.push({ algorithm, key, spec });
      byFlag.set(flag, f);
    }
  }
  return [...byFlag.values()];
}

const ARG: Record<OptionSpec['type'], string> = {
  int: '<n>',
  number: '<x>',
  boolean: '',
  enum: '<name>',
  'int-list': '<list>',
};

/** Registers every algorithm flag on `cmd`, with help from the schemas. */
export function addAlgorithmFlags(cmd: Command): void {
  for (const f of algorithmFlags()) {
    const spec = f.owners[0].spec;
    const help = f.owners
      .map((o) => {
        const values = o.spec.type === 'enum' ? ` (${o.spec.values.join(', ')})` : '';
        return `${o.algorithm}: ${o.spec.description}${values}${o.spec.default ? `; default ${o.spec.default}` : ''}`;
      })
      .join('; ');
    cmd.option(`--${f.flag}${ARG[spec.type] ? ` ${ARG[spec.type]}` : ''}`, help);
  }
}

/**
 * The algorithm's options from its flags (or their --config keys) and the config's
 * `algorithmOptions`, checked against its schema. A flag of another algorithm is refused: the
 * search would run without it.
 */
export function collectAlgorithmOptions(
  algorithm: AlgorithmName,
  get: (attr: string) => unknown,
  fromFile: unknown,
): Record<string, unknown> {
  let fileOptions: Record<string, unknown> = {};
  if (fromFile !== undefined) {
    if (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile))
      throw new DiffusionSearchError(
        `--config key 'algorithmOptions' must be a JSON object, got ${JSON.stringify(fromFile)}`,
        'ARGUMENT',
      );
    // JSON keys of the file, named as the file spells them (algorithmOptions.elites), not as flags.
    fileOptions = checkAlgorithmOptions(algorithm, fromFile as Record<string, unknown>, 'json');
  }
  const raw: Record<string, unknown> = {};
  const own = Object.keys(algorithms[algorithm].options);
  for (const f of algorithmFlags()) {
    const v = get(f.attr);
    if (v === undefined) continue;
    const mine = f.owners.find((o) => o.algorithm === algorithm);
    if (!mine) {
      const takes = own.length
        ? `${algorithm} takes ${algorithmFlags()
            .filter((g) => g.owners.some((o) => o.algorithm === algorithm))
            .map((g) => `--${g.flag}`)
            .join(', ')}`
        : `${algorithm} takes none`;
      throw new DiffusionSearchError(
        `--${f.flag} is an option of ${f.owners.map((o) => o.algorithm).join(' and ')}, not of ${algorithm}; ${takes}`,
        'ARGUMENT',
      );
    }
    raw[mine.key] = v;
  }
  return { ...fileOptions, ...checkAlgorithmOptions(algorithm, raw, 'cli') };
}
