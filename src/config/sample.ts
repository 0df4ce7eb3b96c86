import { stringify } from 'yaml';
import { type Option, OPTIONS, type Section, type Variants } from './options.js';

/**
 * deploy/config.yaml, generated from the option table (`npm run gen:config`; a test fails
 * when the committed file differs): every option with its help line and its default or the
 * table's example. Per-host options are commented out, and so are the store types not shown.
 */

const WIDTH = 92;

function wrap(text: string, indent: string): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && indent.length + 2 + line.length + 1 + word.length > WIDTH) {
      out.push(`${indent}# ${line}`);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(`${indent}# ${line}`);
  return out;
}

function valueLines(key: string, value: unknown, indent: string): string[] {
  const block = Array.isArray(value) ? value.length > 0 : value !== null && typeof value === 'object';
  if (!block) return [`${indent}${key}: ${stringify(value, { lineWidth: 0 }).trimEnd()}`];
  const body = stringify(value, { indent: 2, lineWidth: 0 }).trimEnd().split('\n');
  return [`${indent}${key}:`, ...body.map((l) => `${indent}  ${l}`)];
}

function optionLines(key: string, o: Option, indent: string, commented: boolean): string[] {
  const value = o.sample !== undefined ? o.sample : o.default;
  const lines = valueLines(key, value, indent);
  const out = [...wrap(o.help, indent)];
  out.push(...(commented || o.sampleCommented ? lines.map((l) => `${indent}# ${l.slice(indent.length)}`) : lines));
  return out;
}

function sectionLines(section: Section, indent: string, commented: boolean): string[] {
  const out: string[] = [];
  for (const [key, node] of Object.entries(section)) {
    if (node.kind === 'option') out.push(...optionLines(key, node as Option, indent, commented));
    else if (node.kind === 'variants') out.push(...variantLines(key, node as Variants, indent));
    else {
      out.push(commented ? `${indent}# ${key}:` : `${indent}${key}:`, ...sectionLines(node as Section, `${indent}  `, commented));
    }
  }
  return out;
}

function variantLines(key: string, node: Variants, indent: string): string[] {
  const inner = `${indent}  `;
  const out = [`${indent}${key}:`, ...wrap(node.self.help, inner)];
  for (const [name, options] of Object.entries(node.variants)) {
    if (name === node.sampleVariant) continue;
    out.push(`${inner}# type: ${name}`, ...sectionLines(options, inner, true));
  }
  out.push(`${inner}type: ${node.sampleVariant}`, ...sectionLines(node.variants[node.sampleVariant]!, inner, false));
  return out;
}

const HEADER = `# scitags-collector configuration: every option with its default (or an example).
# Generated from the option table (src/config/options.ts) by \`npm run gen:config\`; edit the
# table, not this file. Keys are validated strictly (unknown keys are rejected); every key is
# optional. Environment variables (SCITAGS_*) override this file and flags override both
# (\`scitags-collector --help\`); print the result with \`scitags-collector --config FILE
# --dump-config\`. Relative file paths are in dataDir, which the systemd unit and the image
# set to /var/lib/scitags-collector (SCITAGS_DATA_DIR). docker-compose.yml sets SCITAGS_STORE
# and SCITAGS_API_BIND for the container.
`;

export function renderSampleConfig(): string {
  const blocks: string[] = [];
  for (const [key, node] of Object.entries(OPTIONS as Section)) blocks.push(sectionLines({ [key]: node }, '', false).join('\n'));
  return `${HEADER}\n${blocks.join('\n\n')}\n`;
}
