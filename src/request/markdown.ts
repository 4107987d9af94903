/** The docs' option tables, generated from the algorithms' schemas (nothing re-lists them by hand). */
import { algorithms } from '../search';
import { accepts, flagOf, type OptionSpec } from './schema';

/** One Markdown table per algorithm: key, CLI flag, accepted values, default, description. */
export function optionsMarkdown(): string {
  return Object.entries(algorithms)
    .map(([name, def]) => {
      const rows = Object.entries(def.options as Record<string, OptionSpec>).map(
        ([key, s]) => `| \`${key}\` | \`--${flagOf(key, s)}\` | ${accepts(s)} | ${s.default ?? ''} | ${s.description} |`,
      );
      return [`### ${name}`, '', '| option | flag | takes | default | what |', '|---|---|---|---|---|', ...rows].join('\n');
    })
    .join('\n\n');
}
