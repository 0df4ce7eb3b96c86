import { setFlagsFromString } from 'node:v8';

/**
 * V8 inlining budgets for the decode path, raised from V8's defaults (460 bytes of bytecode
 * per inlined function, 920 per optimised function).
 *
 * Why: one optimised function on the record path (the flow decoder's set loop, the record sink,
 * the aggregator) calls a dozen small helpers. Once the daemon's warm-up and real traffic have
 * shown several protocols and templates, TurboFan spends the default cumulative budget on
 * the polymorphic call sites and stops inlining the rest (the registry getter, the NAT64
 * match, fillSampling, the decoder wrapper each became a real call). Measured here with
 * best-of-15 decode+aggregate CPU per record after the warm-up (Node 20): IPFIX 200 -> 171 ns,
 * NetFlow v9 198 -> 168 ns, sFlow 251 -> 222 ns; Node 24 alike (190 -> 170 ns). Larger budgets
 * (10,000 / 2,000) were slower again: more code, more instruction-cache misses.
 */
export const JIT_FLAGS = ['--max-inlined-bytecode-size-cumulative=3000', '--max-inlined-bytecode-size=1000'] as const;

/**
 * The flags to apply: none of them when the operator already set an inlining budget on the
 * command line or in NODE_OPTIONS (theirs wins).
 */
export function jitFlagsFor(execArgv: readonly string[], nodeOptions: string | undefined): readonly string[] {
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)];
  return given.some((a) => a.startsWith('--max-inlined-bytecode-size') || a.startsWith('--max_inlined_bytecode_size')) ? [] : JIT_FLAGS;
}

/**
 * Applies the flags process-wide (worker threads included). Call before the decode path first
 * runs: V8 reads them when it optimises a function, so code optimised earlier keeps its budget.
 */
export function tuneJit(): readonly string[] {
  const flags = jitFlagsFor(process.execArgv, process.env['NODE_OPTIONS']);
  if (flags.length > 0) setFlagsFromString(flags.join(' '));
  return flags;
}
