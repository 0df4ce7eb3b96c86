import { describe, expect, it } from 'vitest';
import { createFlowDecoderState, decodeFlowDatagram } from '../../decoders/ipfix/index.js';
import type { TemplateEvent } from '../../decoders/decoder.js';
import { createForwardingLogger, createLogger, type LogFields, type LogLevel } from '../../src/log.js';
import { InlineDecodeStage } from '../../src/pipeline/stage.js';
import { f, ipfixDataSet, ipfixMessage, ipfixTemplateSet, ipfixWithdrawAllSet, ipfixWithdrawalSet } from '../builders/ipfix.js';
import { captureLog } from '../support/logs.js';

describe('the logger: JSON lines through pino', () => {
  it('writes the level name, the child bindings, the fields and the message, nothing else', () => {
    const { log, lines } = captureLog('info');
    log.child({ component: 'serve' }).info('listening', { port: 4739 });
    log.debug('below the threshold');
    expect(lines).toEqual([{ level: 'info', component: 'serve', port: 4739, msg: 'listening' }]);
  });

  it('stamps each line with an ISO 8601 time', () => {
    const seen: string[] = [];
    const log = createLogger({ level: 'info', destination: { write: (s: string) => void seen.push(s) } });
    log.warn('w');
    const line = JSON.parse(seen[0]!) as { time: string; level: string };
    expect(line.level).toBe('warn');
    expect(new Date(line.time).toISOString()).toBe(line.time);
  });

  it('serializes an err field as type, message and stack', () => {
    const { log, lines } = captureLog('info');
    log.error('failed', { err: new TypeError('boom') });
    expect(lines).toEqual([
      { level: 'error', msg: 'failed', err: { type: 'TypeError', message: 'boom', stack: expect.stringMatching(/^TypeError: boom\n/) } },
    ]);
  });
});

describe('limited(): one line per key and interval, with the count of the rest', () => {
  it('passes the first line, drops the others inside the interval, and reports them on the next', () => {
    let now = 0;
    const { log, lines } = captureLog('info', { now: () => now, intervalMs: 10_000 });
    const decode = log.child({ component: 'decode' });
    for (let i = 0; i < 5; i++)
      decode.limited('decode|192.0.2.1|truncated', 'warn', 'exporter 192.0.2.1:4739: truncated', { exporter: '192.0.2.1' });
    now = 9_999;
    decode.limited('decode|192.0.2.1|truncated', 'warn', 'exporter 192.0.2.1:4739: truncated', { exporter: '192.0.2.1' });
    now = 10_000;
    decode.limited('decode|192.0.2.1|truncated', 'warn', 'exporter 192.0.2.1:4739: truncated', { exporter: '192.0.2.1' });
    now = 30_000;
    decode.limited('decode|192.0.2.1|truncated', 'warn', 'exporter 192.0.2.1:4739: truncated', { exporter: '192.0.2.1' });
    expect(lines).toEqual([
      { level: 'warn', component: 'decode', exporter: '192.0.2.1', msg: 'exporter 192.0.2.1:4739: truncated' },
      { level: 'warn', component: 'decode', exporter: '192.0.2.1', suppressed: 5, msg: 'exporter 192.0.2.1:4739: truncated' },
      { level: 'warn', component: 'decode', exporter: '192.0.2.1', msg: 'exporter 192.0.2.1:4739: truncated' },
    ]);
  });

  it('limits per key and per component: the same key in two components are two keys', () => {
    const { log, lines } = captureLog('info', { now: () => 0 });
    const a = log.child({ component: 'registry' });
    const b = log.child({ component: 'store' });
    a.limited('failed', 'warn', 'a1');
    a.limited('failed', 'warn', 'a2');
    b.limited('failed', 'warn', 'b1');
    a.limited('other', 'warn', 'a3');
    expect(lines.map((l) => [l.component, l.msg])).toEqual([
      ['registry', 'a1'],
      ['store', 'b1'],
      ['registry', 'a3'],
    ]);
  });

  it('neither writes nor counts below the threshold', () => {
    let now = 0;
    const { log, lines } = captureLog('info', { now: () => now });
    log.limited('k', 'debug', 'not written');
    log.limited('k', 'info', 'first');
    log.limited('k', 'debug', 'not counted');
    now = 20_000;
    log.limited('k', 'info', 'second');
    expect(lines).toEqual([
      { level: 'info', msg: 'first' },
      { level: 'info', msg: 'second' },
    ]);
  });

  it('remembers at most maxKeys keys, forgetting the oldest first', () => {
    const { log, lines } = captureLog('info', { now: () => 0, maxKeys: 2 });
    log.limited('a', 'info', 'a');
    log.limited('b', 'info', 'b');
    log.limited('c', 'info', 'c'); // forgets a
    log.limited('a', 'info', 'a again');
    log.limited('c', 'info', 'c again'); // still remembered: dropped
    expect(lines.map((l) => l.msg)).toEqual(['a', 'b', 'c', 'a again']);
  });
});

describe('a decode worker logger', () => {
  it('rate-limits in the worker and hands level, message and fields (with its bindings) to the main thread', () => {
    const posted: { level: LogLevel; msg: string; fields: LogFields | undefined }[] = [];
    // As WorkerDecodeStage gets them: through structured clone (postMessage).
    const worker = createForwardingLogger({
      level: 'info',
      now: () => 0,
      emit: (level, msg, fields) => posted.push(structuredClone({ level, msg, fields })),
    });
    const child = worker.child({ stage: 'x' });
    child.debug('below');
    child.limited('k', 'warn', 'once', { exporter: '192.0.2.9' });
    child.limited('k', 'warn', 'once', { exporter: '192.0.2.9' });
    worker.error('crashed', { err: new RangeError('bad') });
    expect(posted).toEqual([
      { level: 'warn', msg: 'once', fields: { stage: 'x', exporter: '192.0.2.9' } },
      { level: 'error', msg: 'crashed', fields: { err: expect.any(RangeError) } },
    ]);
    // What the main thread does with a message (WorkerDecodeStage): one line with the worker's number.
    const main = captureLog('info');
    const slot = main.log.child({ component: 'decode' }).child({ worker: 3 });
    for (const p of posted) slot.log(p.level, p.msg, p.fields);
    expect(main.lines).toEqual([
      { level: 'warn', component: 'decode', worker: 3, stage: 'x', exporter: '192.0.2.9', msg: 'once' },
      {
        level: 'error',
        component: 'decode',
        worker: 3,
        err: { type: 'RangeError', message: 'bad', stack: expect.any(String) },
        msg: 'crashed',
      },
    ]);
  });
});

const V4 = [f('sourceIPv4Address', 4), f('destinationIPv4Address', 4), f('octetDeltaCount', 4), f('packetDeltaCount', 4)];
const V4B = [...V4, f('ingressInterface', 4)];

describe('template events (decoder hook) and their debug lines', () => {
  it('tells learnt, changed, withdrawn and expired, but not an unchanged refresh', () => {
    const st = createFlowDecoderState({ templateLifetimeMs: 60_000 });
    const events: TemplateEvent[] = [];
    const at = (ms: number, sets: Uint8Array[], domain = 7): void =>
      void decodeFlowDatagram(ipfixMessage({ domain }, sets), { exporterAddr: '192.0.2.1', exporterPort: 4739, receivedMs: ms }, st, {
        onTemplate: (e) => events.push(e),
      });
    at(0, [
      ipfixTemplateSet([
        { id: 256, fields: V4 },
        { id: 257, fields: V4 },
      ]),
    ]);
    at(1000, [ipfixTemplateSet([{ id: 256, fields: V4 }])]); // refresh: no event
    at(2000, [ipfixTemplateSet([{ id: 256, fields: V4B }])]);
    at(3000, [ipfixWithdrawalSet([257])]);
    at(4000, [ipfixWithdrawalSet([999])]); // never known: no event
    at(100_000, [ipfixDataSet(256, V4B, [['10.0.0.1', '10.0.0.2', 1, 1, 3]])]);
    at(100_000, [ipfixTemplateSet([{ id: 300, fields: V4 }]), ipfixWithdrawAllSet()], 8);
    const base = { protocol: 'ipfix', exporterAddr: '192.0.2.1', exporterPort: 4739, kind: 'data' };
    expect(events).toEqual([
      { ...base, event: 'learnt', domain: 7, templateId: 256, fields: 4 },
      { ...base, event: 'learnt', domain: 7, templateId: 257, fields: 4 },
      { ...base, event: 'changed', domain: 7, templateId: 256, fields: 5 },
      { ...base, event: 'withdrawn', domain: 7, templateId: 257, fields: 4 },
      { ...base, event: 'expired', domain: 7, templateId: 256, fields: 5 },
      { ...base, event: 'learnt', domain: 8, templateId: 300, fields: 4 },
      { ...base, event: 'withdrawn', domain: 8, templateId: 300, fields: 4 },
    ]);
  });

  it('the decode stage logs them at debug, per exporter, domain and template id, with exporters first seen', () => {
    const { log, lines } = captureLog('debug', { now: () => 0 });
    const stage = new InlineDecodeStage(
      { defaultSamplingRate: 1, samplingRules: [], flowLimits: {}, crashDir: '', queueSize: 100 },
      { now: () => 0, log: log.child({ component: 'decode' }), aggregator: { add: () => {} } },
    );
    const tpl = ipfixMessage({ domain: 7 }, [ipfixTemplateSet([{ id: 256, fields: V4 }])]);
    const changed = ipfixMessage({ domain: 7 }, [ipfixTemplateSet([{ id: 256, fields: V4B }])]);
    stage.decodeNow(tpl, '192.0.2.1', 4739, 'ipfix', 0);
    stage.decodeNow(tpl, '192.0.2.1', 4739, 'ipfix', 0);
    // A template flapping between two layouts: one line per key and interval.
    for (let i = 0; i < 3; i++) {
      stage.decodeNow(changed, '192.0.2.1', 4739, 'ipfix', 0);
      stage.decodeNow(tpl, '192.0.2.1', 4739, 'ipfix', 0);
    }
    stage.decodeNow(tpl, '192.0.2.2', 4739, 'ipfix', 0);
    const t = { component: 'decode', port: 4739, protocol: 'ipfix', domain: 7, templateId: 256, kind: 'data' };
    expect(lines).toEqual([
      { level: 'debug', component: 'decode', exporter: '192.0.2.1', port: 4739, listener: 'ipfix', msg: 'exporter 192.0.2.1 first seen' },
      { level: 'debug', ...t, event: 'learnt', exporter: '192.0.2.1', fields: 4, msg: 'template 256 learnt' },
      { level: 'debug', ...t, event: 'changed', exporter: '192.0.2.1', fields: 5, msg: 'template 256 changed' },
      { level: 'debug', component: 'decode', exporter: '192.0.2.2', port: 4739, listener: 'ipfix', msg: 'exporter 192.0.2.2 first seen' },
      { level: 'debug', ...t, event: 'learnt', exporter: '192.0.2.2', fields: 4, msg: 'template 256 learnt' },
    ]);
  });

  it('sets no hook below debug (nothing to pay per template)', () => {
    const { log, lines } = captureLog('info');
    const stage = new InlineDecodeStage(
      { defaultSamplingRate: 1, samplingRules: [], flowLimits: {}, crashDir: '', queueSize: 100 },
      { now: () => 0, log, aggregator: { add: () => {} } },
    );
    expect((stage as unknown as { decoder: { opts: { onTemplate: unknown } } }).decoder.opts.onTemplate).toBeUndefined();
    stage.decodeNow(ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields: V4 }])]), '192.0.2.1', 4739, 'ipfix', 0);
    expect(lines).toEqual([]);
  });
});
