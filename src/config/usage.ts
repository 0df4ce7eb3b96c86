import { stringify } from 'yaml';
import { type OptionEntry, OPTION_ENTRIES } from './options.js';

/** The default as --help shows it: the option's own words, else the value in YAML flow style. */
export function defaultText(entry: OptionEntry): string {
  if (entry.option.defaultText !== undefined) return entry.option.defaultText;
  const d = entry.option.default;
  if (d === '') return "''";
  return stringify(d, { collectionStyle: 'flow', lineWidth: 0 }).trim();
}

const COLUMN = 36;

function optionLines(e: OptionEntry): string {
  const flag = e.option.value === 'boolean' ? `--[no-]${e.flag}` : `--${e.flag} ${e.option.arg}`;
  const head = `      ${flag}`;
  const pad = head.length < COLUMN ? ' '.repeat(COLUMN - head.length) : `\n${' '.repeat(COLUMN)}`;
  const variant = e.variant !== undefined ? `, ${e.variant} store only` : '';
  return `${head}${pad}${e.option.help}\n${' '.repeat(COLUMN)}(${e.path}; default ${defaultText(e)}; env ${e.env}${variant})\n`;
}

/**
 * Usage text of the configuration options (the CLI puts it under `serve`), generated from the
 * option table and grouped by section, each with its key path, default and variable.
 */
export const CONFIG_USAGE: string = (() => {
  let out = `Options (flags override environment variables, which override the config file):
  -c, --config FILE                 YAML configuration file (env SCITAGS_CONFIG); defaults need none
      --dump-config                 print the resolved configuration as YAML (secrets masked) and exit
  -h, --help                        this text
  -V, --version                     print the version
`;
  let section = '';
  for (const e of OPTION_ENTRIES) {
    const top = e.path.split('.')[0]!;
    if (top !== section) {
      section = top;
      out += `\n  ${top}:\n`;
    }
    out += optionLines(e);
  }
  return out;
})();
