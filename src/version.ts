import { readFileSync } from 'node:fs';

/** The package version, read once from package.json (two levels up in src/ and dist/src/). */
export const VERSION: string = (() => {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'scitags-collector' && pkg.version) return pkg.version;
    } catch {
      // try the next layout
    }
  }
  return '0.0.0';
})();

/**
 * The source commit of this build, for scitags_build_info: SCITAGS_COMMIT when the image or
 * unit sets it (a package has no .git to ask); undefined otherwise.
 */
export const COMMIT: string | undefined = /^[0-9a-f]{7,40}$/i.test(process.env.SCITAGS_COMMIT ?? '')
  ? process.env.SCITAGS_COMMIT
  : undefined;
