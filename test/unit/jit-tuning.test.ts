import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { JIT_FLAGS, jitFlagsFor } from '../../src/pipeline/jit-tuning.js';

describe('JIT tuning (src/pipeline/jit-tuning.ts)', () => {
  it('applies the raised inlining budgets unless the operator set one', () => {
    expect(JIT_FLAGS).toEqual(['--max-inlined-bytecode-size-cumulative=3000', '--max-inlined-bytecode-size=1000']);
    expect(jitFlagsFor([], undefined)).toEqual(JIT_FLAGS);
    expect(jitFlagsFor(['--enable-source-maps'], '--max-old-space-size=512')).toEqual(JIT_FLAGS);
    expect(jitFlagsFor(['--max-inlined-bytecode-size=460'], undefined)).toEqual([]);
    expect(jitFlagsFor([], '--trace-gc --max_inlined_bytecode_size_cumulative=920')).toEqual([]);
  });

  it('the V8 of this Node knows both flags', () => {
    // Node refuses an unknown V8 flag on its command line ("bad option", exit 9), whereas
    // v8.setFlagsFromString would pass over it: a Node release that renamed them fails here.
    const r = spawnSync(process.execPath, [...JIT_FLAGS, '-e', 'process.stdout.write("ok")'], { encoding: 'utf8' });
    expect([r.status, r.stdout, r.stderr]).toEqual([0, 'ok', '']);
  });
});
