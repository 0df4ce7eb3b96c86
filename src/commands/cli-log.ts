/**
 * The logger of the one-shot commands (`ingest`, `replay`), which read no config file: the
 * same two settings as `serve`, from their flags or the same environment variables.
 */
import { LOG_FORMATS, LOG_LEVELS } from '../config/schema.js';
import { createLogger, type LogFormat, type Logger, type LogThreshold } from '../log.js';

/** parseArgs options every such command accepts. */
export const CLI_LOG_OPTIONS = {
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
} as const;

export const CLI_LOG_USAGE = `  --log-level LEVEL   ${LOG_LEVELS.join('|')} (env SCITAGS_LOG_LEVEL; default info)
  --log-format FORMAT ${LOG_FORMATS.join('|')} (env SCITAGS_LOG_FORMAT; default json)
`;

/** The command's root logger with `component` set; throws on a value that is not a level or format. */
export function cliLogger(
  component: string,
  values: { 'log-level'?: string | undefined; 'log-format'?: string | undefined },
  env: NodeJS.ProcessEnv,
): Logger {
  const level = (values['log-level'] ?? env.SCITAGS_LOG_LEVEL ?? 'info').trim().toLowerCase();
  const format = (values['log-format'] ?? env.SCITAGS_LOG_FORMAT ?? 'json').trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    throw new Error(`log level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`);
  if (!(LOG_FORMATS as readonly string[]).includes(format))
    throw new Error(`log format must be one of ${LOG_FORMATS.join(', ')}, got ${JSON.stringify(format)}`);
  return createLogger({ level: level as LogThreshold, format: format as LogFormat }).child({ component });
}
