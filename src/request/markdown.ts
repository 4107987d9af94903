/** The docs' option tables, generated from the schemas (nothing re-lists them by hand). */
import { algorithms } from '../search';
import { REQUEST_FIELDS } from './fields';
import { accepts, flagOf, type FieldSpec, type OptionSpec } from './schema';

/** "an integer from 1 to 2147483647" reads "an integer ≥ 1" in the docs (the upper bound is only int32's). */
const takes = (s: FieldSpec) => accepts(s).replace(/ from (\d+) to 2147483647$/, ' ≥ $1');

/** One Markdown table per algorithm: key, CLI flag, accepted values, default, description. */
export function optionsMarkdown(): string {
  return Object.entries(algorithms)
    .map(([name, def]) => {
      const rows = Object.entries(def.options as Record<string, OptionSpec>).map(
        ([key, s]) => `| \`${key}\` | \`--${flagOf(key, s)}\` | ${takes(s)} | ${s.default ?? ''} | ${s.description} |`,
      );
      const head = ['| option | flag | takes | default | what |', '|---|---|---|---|---|'];
      return [`### ${name}`, '', ...head, ...rows].join('\n');
    })
    .join('\n\n');
}

/** The request keys whose CLI form is not `--<key in kebab case> <value>`. */
const CLI_FORM: Record<string, string> = {
  prompt: '`--prompt` (repeat), `--prompts <file>`',
  algorithmOptions: "the algorithm's flags, or `--config`",
  eval: '`--no-eval` turns it off',
  preview: 'none (HTTP and library progress)',
};

/** The request's top-level keys (src/request/fields.ts), one table: key, CLI flag, accepted values, default, what. */
export function fieldsMarkdown(): string {
  const rows = Object.entries(REQUEST_FIELDS).map(([key, s]) => {
    const flag = CLI_FORM[key] ?? `\`--${flagOf(key, s)}\``;
    return `| \`${key}\` | ${flag} | ${takes(s)} | ${s.default ?? ''} | ${s.description} |`;
  });
  return ['| key | flag | takes | default | what |', '|---|---|---|---|---|', ...rows].join('\n');
}
