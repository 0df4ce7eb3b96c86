/** Helpers shared by the benches. */

export { repoRoot } from '../support/root.js';

/** Median of the runs (the upper one of the middle two for an even count); `xs` is not changed. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
