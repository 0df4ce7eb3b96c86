/**
 * RFC 6587 framing of TCP syslog (collectors/syslog-tcp.ts SyslogFramer), without sockets:
 * octet counting (3.4.1) and LF framing (3.4.2), split at every byte, oversized messages
 * (first max+1 bytes handed on, the rest skipped) and an unreadable MSG-LEN.
 */
import { describe, expect, it } from 'vitest';
import { SyslogFramer } from '../../collectors/syslog-tcp.js';

function frameAll(chunks: (string | Buffer)[], max = 64): { messages: string[]; ok: boolean; oversized: number } {
  const messages: string[] = [];
  const f = new SyslogFramer(max, (m) => messages.push(m.toString('latin1')));
  let ok = true;
  for (const c of chunks) ok = f.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c) && ok;
  f.end();
  return { messages, ok, oversized: f.oversized };
}

/** Every split of `text` into two chunks gives the same messages as one chunk. */
function everySplit(text: string, max = 64): string[][] {
  const out: string[][] = [];
  for (let i = 0; i <= text.length; i++) out.push(frameAll([text.slice(0, i), text.slice(i)], max).messages);
  return out;
}

describe('RFC 6587 framing', () => {
  it('octet counting: MSG-LEN SP MSG, back to back, any split', () => {
    const text = '5 <1>1 12 {"a":"b c"}\n3 abc';
    const want = ['<1>1 ', '{"a":"b c"}\n', 'abc'];
    expect(frameAll([text])).toEqual({ messages: want, ok: true, oversized: 0 });
    for (const got of everySplit(text)) expect(got).toEqual(want);
  });

  it('LF framing: CR LF and LF trailers, empty lines and NULs skipped, a last message without its LF kept', () => {
    const text = '<134>1 - h x - - - {"a":1}\r\n\n\0{"b":2}\nlast';
    const want = ['<134>1 - h x - - - {"a":1}', '{"b":2}', 'last'];
    expect(frameAll([text]).messages).toEqual(want);
    for (const got of everySplit(text)) expect(got).toEqual(want);
  });

  it('both framings on one connection, told apart per message', () => {
    expect(frameAll(['{"lf":1}\n7 {"oc":}{"lf":2}\n']).messages).toEqual(['{"lf":1}', '{"oc":}', '{"lf":2}']);
  });

  it('an oversized octet-counted message: its first max+1 bytes go on, the rest is skipped, the next one is read', () => {
    const big = 'x'.repeat(100);
    const r = frameAll([`100 ${big}4 next`], 10);
    expect(r).toEqual({ messages: ['x'.repeat(11), 'next'], ok: true, oversized: 1 });
    for (const got of everySplit(`100 ${big}4 next`, 10)) expect(got).toEqual(['x'.repeat(11), 'next']);
  });

  it('an oversized LF-framed message: first max+1 bytes go on, skipped to its LF', () => {
    const r = frameAll(['{', 'y'.repeat(30), 'y'.repeat(30), '\n{"ok":1}\n'], 10);
    expect(r).toEqual({ messages: ['{' + 'y'.repeat(10), '{"ok":1}'], ok: true, oversized: 1 });
    // Complete in one chunk, longer than the cap: handed on whole (the decoder says too-large).
    expect(frameAll(['z'.repeat(20) + '\n'], 10)).toEqual({ messages: ['z'.repeat(20)], ok: true, oversized: 1 });
  });

  it('a MSG-LEN not followed by SP, or longer than 9 digits, makes the stream unreadable', () => {
    expect(frameAll(['12x{"a":1}']).ok).toBe(false);
    expect(frameAll(['1234567890 x']).ok).toBe(false);
    // Leading zero is not a MSG-LEN (NONZERO-DIGIT first): LF framing.
    expect(frameAll(['05 abc\n'])).toEqual({ messages: ['05 abc'], ok: true, oversized: 0 });
  });

  it('an octet-counted message cut short by the end of the connection is dropped', () => {
    expect(frameAll(['10 abc']).messages).toEqual([]);
  });
});
