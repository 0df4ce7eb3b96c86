import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { Goflow2Framer, Goflow2StreamInput, separatorByte } from '../../collectors/goflow2-stream.js';
import type { ReceivedDatagram } from '../../collectors/queue.js';
import type { DecodeOptions } from '../../decoders/decoder.js';
import { DecodeError } from '../../decoders/errors.js';
import { createGoflow2Decoder, messageExporter, UNKNOWN_SAMPLER } from '../../decoders/goflow2/decoder.js';
import { emptyScan } from '../../decoders/goflow2/wire.js';
import { emptyRecord, type FlowRecord } from '../../decoders/record.js';
import { encodeFlowLabel } from '../../decoders/scitags/flowlabel.js';
import { DatagramDecoder, DEFAULT_DECODER_OPTIONS } from '../../src/pipeline/decoder.js';
import { snapshotOf } from '../../src/pipeline/snapshot.js';
import { addressBytes, encodeFlowMessage, encodeStream, type FlowMessageFields } from '../support/goflow2.js';
import { GOLDEN_MESSAGES } from '../support/goflow2-golden.js';

const OPTS: DecodeOptions = { withFields: false, withAddresses: true, defaultSamplingRate: 1, innerHeaders: false };
const CTX = { exporterAddr: '192.0.2.1', exporterPort: 0, receivedMs: 0 };
const T = 1_700_000_000_000;

/** The golden IPv6 flow marked ATLAS (2, 1), sampled 1:1000, with more fields set. */
const V6: FlowMessageFields = {
  ...GOLDEN_MESSAGES[0],
  time_flow_end_ns: `${T + 1500}250000`,
  ip_tos: 0x20,
  vlan_id: 300,
  // the entropy bits of the 20-bit label set, and a bit above it (masked off)
  ipv6_flow_label: encodeFlowLabel(2, 1) | 0xc0003 | 0x100000,
  observation_domain_id: 7,
  as_path: [64500, 64501],
  layer_stack: [0, 2, 3],
};

function decode(msg: Uint8Array, opts: DecodeOptions = OPTS) {
  const records: FlowRecord[] = [];
  const out = createGoflow2Decoder().decode(msg, CTX, undefined, opts, (r) => records.push({ ...r }));
  return { records, out };
}

describe('goflow2 FlowMessage decoder', () => {
  it('maps every field the pipeline reads, from a message written with the same schema', () => {
    const msg = encodeFlowMessage(V6);
    const { records, out } = decode(msg);
    expect(out.errors).toEqual([]);
    expect(out.protocol).toBe('goflow2');
    expect(records).toHaveLength(1);
    const { addrBytes, ...rec } = records[0]!;
    const want: FlowRecord = {
      ...emptyRecord('goflow2', '192.0.2.1:0', 7),
      ipVersion: 6,
      flowLabel: (encodeFlowLabel(2, 1) | 0xc0003) & 0xfffff,
      packets: 100,
      bytes: 150000,
      samplingRate: 1000,
      samplingSource: 'record',
      inIf: 10,
      outIf: 20,
      vlan: 300,
      srcAddr: '2001:db8::1',
      dstAddr: '2001:db8:1::2',
      addrLen: 16,
      srcPort: 40000,
      dstPort: 1094,
      ipProtocol: 6,
      trafficClass: 0x20,
      startMs: T,
      endMs: T + 1500.25,
      exportMs: T + 2000,
    };
    const { addrBytes: _none, ...wantRest } = want;
    expect(rec).toEqual({ ...wantRest, srcAddrAt: rec.srcAddrAt, dstAddrAt: rec.dstAddrAt });
    // The address bytes are the message's own, at the offsets given.
    expect(addrBytes).toBe(msg);
    expect([...msg.subarray(rec.srcAddrAt, rec.srcAddrAt + 16)]).toEqual([...addressBytes('2001:db8::1')]);
    expect([...msg.subarray(rec.dstAddrAt, rec.dstAddrAt + 16)]).toEqual([...addressBytes('2001:db8:1::2')]);
  });

  it('formats addresses only when asked; IPv4 has no label; IPv4-mapped addresses are folded', () => {
    const v4 = {
      ...V6,
      etype: 0x0800,
      src_addr: addressBytes('::ffff:198.51.100.1'),
      dst_addr: addressBytes('::ffff:198.51.100.2'),
    };
    const msg = encodeFlowMessage(v4);
    const [rec] = decode(msg, { ...OPTS, withAddresses: false }).records;
    expect(rec).toMatchObject({ ipVersion: 4, flowLabel: undefined, srcAddr: undefined, dstAddr: undefined, addrLen: 4 });
    expect([...msg.subarray(rec!.srcAddrAt, rec!.srcAddrAt + 4)]).toEqual([198, 51, 100, 1]);
    expect(decode(msg).records[0]).toMatchObject({ srcAddr: '198.51.100.1', dstAddr: '198.51.100.2' });
  });

  it('an unknown etype gives IP version 0; absent values stay undefined; rate 0 takes the default', () => {
    const { records, out } = decode(encodeFlowMessage({ sampler_address: addressBytes('192.0.2.1'), bytes: 10, packets: 1 }), {
      ...OPTS,
      defaultSamplingRate: 64,
    });
    expect(out.unknownSampling).toBe(1);
    expect(records[0]).toEqual({
      ...emptyRecord('goflow2', '192.0.2.1:0', 0),
      bytes: 10,
      packets: 1,
      samplingRate: 64,
      samplingSource: 'unknown',
    });
  });

  it('the message as fields for decode --fields', () => {
    const [rec] = decode(encodeFlowMessage(V6), { ...OPTS, withFields: true }).records;
    expect(rec!.fields).toMatchObject({ type: 'IPFIX', sampler_address: '192.0.2.1', src_addr: '2001:db8::1', as_path: [64500, 64501] });
  });

  const good = encodeFlowMessage(V6);
  const cases: [string, Uint8Array, DecodeError['code']][] = [
    ['empty message', new Uint8Array(0), 'bad-length'],
    ['a varint cut short (bytes = 150000 without its last byte)', Uint8Array.from([0x48, 0xf0, 0x93]), 'truncated'],
    ['a length past the end (src_addr says 16, 3 bytes follow)', Uint8Array.from([0x32, 0x10, 1, 2, 3]), 'truncated'],
    ['bytes (9) as length-delimited', Uint8Array.from([0x4a, 0x01, 0x05]), 'record-malformed'],
    ['src_addr (6) as a varint', Uint8Array.from([0x30, 0x05]), 'record-malformed'],
    ['field number 0', Uint8Array.from([0x00, 0x01]), 'record-malformed'],
    ['a group (wire type 3)', Uint8Array.from([0x4b]), 'record-malformed'],
    ['wire type 7', Uint8Array.from([0x4f]), 'record-malformed'],
    ['a varint of 11 bytes', Uint8Array.from([0x48, ...Array<number>(10).fill(0xff), 0x01]), 'record-malformed'],
    ['a length varint over 32 bits', Uint8Array.from([0x32, 0xff, 0xff, 0xff, 0xff, 0x7f]), 'bad-length'],
    ['a packed as_path whose last varint crosses its end', Uint8Array.from([0xb2, 0x06, 0x02, 0x01, 0x80, 0x01]), 'record-malformed'],
    ['the good message cut inside its last field', good.subarray(0, good.length - 1), 'truncated'],
  ];
  for (const [name, bytes, code] of cases) {
    it(`counts ${name} as ${code}, with no record`, () => {
      const { records, out } = decode(bytes);
      expect(records).toEqual([]);
      expect(out.errors.map((e) => e.code)).toEqual([code]);
    });
  }

  it('skips unknown fields of every wire type (a newer goflow2)', () => {
    const extra = Uint8Array.from([0xf8, 0x0f, 0x01, 0xf9, 0x0f, 1, 2, 3, 4, 5, 6, 7, 8, 0xfa, 0x0f, 0x02, 9, 9, 0xfd, 0x0f, 1, 2, 3, 4]);
    const { records, out } = decode(Buffer.concat([good, extra]));
    expect(out.errors).toEqual([]);
    expect(records[0]!.bytes).toBe(150000);
  });

  it('names the sampler as the exporter, or 0.0.0.0 when it has none or does not scan', () => {
    const scan = emptyScan();
    expect(messageExporter(good, scan)).toBe('192.0.2.1');
    expect(scan.timeReceivedNs).toBe((T + 2000) * 1e6);
    expect(messageExporter(encodeFlowMessage({ ...V6, sampler_address: addressBytes('2001:db8::9') }), scan)).toBe('2001:db8::9');
    expect(messageExporter(encodeFlowMessage({ bytes: 1 }), scan)).toBe(UNKNOWN_SAMPLER);
    expect(messageExporter(Uint8Array.from([0x4a, 0x01]), scan)).toBe(UNKNOWN_SAMPLER);
  });

  it('goes through the pipeline as the goflow2 listener, counted per sampler', () => {
    const dec = new DatagramDecoder(DEFAULT_DECODER_OPTIONS);
    const seen: FlowRecord[] = [];
    for (const m of [good, good, Uint8Array.from([0x4a, 0x01, 0x05])])
      dec.decodeInto(m, messageExporter(m, emptyScan()), 0, T, 'goflow2', { add: (r) => seen.push({ ...r }) });
    expect(seen.map((r) => [r.protocol, r.exporter, r.bytes * r.samplingRate])).toEqual([
      ['goflow2', '192.0.2.1:0', 150_000_000],
      ['goflow2', '192.0.2.1:0', 150_000_000],
    ]);
    const ex = snapshotOf(dec, T).exporters;
    expect(ex.map((e) => [e.address, e.datagrams, e.records, e.protocols, e.errorsByReason])).toEqual([
      ['192.0.2.1', 2, 2, ['goflow2'], {}],
      ['0.0.0.0', 1, 0, ['goflow2'], { 'record-malformed': 1 }],
    ]);
    // A goflow2 message never reaches the UDP protocols, nor UDP datagrams the goflow2 decoder.
    expect(dec.decode(good, '192.0.2.1', 0, T, 'ipfix').errors.map((e) => e.code)).toEqual(['bad-version']);
  });
});

describe('goflow2 stream framing', () => {
  const msgs = [V6, { ...V6, bytes: 1, etype: 0x0800 }, { ...V6, sampler_address: addressBytes('2001:db8::9') }];
  const stream = encodeStream(msgs);

  function frame(chunks: Buffer[], max = 65536, separator: 'newline' | 'none' = 'newline') {
    const f = new Goflow2Framer(max, separatorByte(separator));
    const got: Uint8Array[] = [];
    const errors: string[] = [];
    for (const c of chunks) {
      f.push(c);
      for (let m = f.next(); m !== undefined; m = f.next()) {
        if (m instanceof DecodeError) errors.push(m.code);
        else got.push(Buffer.from(m));
      }
    }
    const end = f.end();
    if (end) errors.push(end.code);
    return { got, errors, discarded: f.discarded };
  }

  it('gives the same messages however the stream is cut into chunks', () => {
    const whole = frame([stream]);
    expect(whole.errors).toEqual([]);
    expect(whole.got.map((m) => Buffer.from(m).toString('hex'))).toEqual(
      msgs.map((m) => Buffer.from(encodeFlowMessage(m)).toString('hex')),
    );
    for (let cut = 1; cut < stream.length; cut++) {
      expect(frame([stream.subarray(0, cut), stream.subarray(cut)]).got).toEqual(whole.got);
    }
    expect(frame([...stream].map((b) => Buffer.from([b]))).got).toEqual(whole.got);
  });

  it('a stream ending inside a message counts it truncated', () => {
    const r = frame([stream.subarray(0, stream.length - 3)]);
    expect(r.got).toHaveLength(2);
    expect(r.errors).toEqual(['truncated']);
  });

  it('a length over the cap is counted once and the rest of the stream discarded', () => {
    const big = encodeStream([{ ...V6, as_path: Array.from({ length: 100 }, (_, i) => 64500 + i) }]);
    const r = frame([stream, big, stream], 200);
    expect(r.got).toHaveLength(3);
    expect(r.errors).toEqual(['limit-exceeded']);
    expect(r.discarded).toBe(big.length + stream.length);
  });

  it('reads streams without separators (-transport.file.sep=, Kafka-like framing) when told so', () => {
    const bare = encodeStream(msgs, '');
    expect(bare.length).toBe(stream.length - msgs.length);
    expect(frame([bare], 65536, 'none').got).toEqual(frame([stream]).got);
  });

  it('a missing separator is bad-separator: the stream lost its framing, the rest is discarded', () => {
    const bare = encodeStream(msgs, '');
    const r = frame([bare]);
    expect(r.got).toHaveLength(1);
    expect(r.errors).toEqual(['bad-separator']);
    expect(r.discarded).toBe(bare.length - encodeStream(msgs.slice(0, 1), '').length);
  });

  it('a length prefix of more than 10 bytes is bad-length', () => {
    expect(frame([Buffer.from(Array<number>(11).fill(0x80))]).errors).toEqual(['bad-length']);
  });
});

describe('goflow2 stream input', () => {
  /** A decode stage whose queue only empties when the test says so, refusing when asked. */
  function fakeStage(capacity: number, workerCount: number) {
    const queued: ReceivedDatagram[] = [];
    const decoded: ReceivedDatagram[] = [];
    let refuseNext = 0;
    return {
      decoded,
      refuse: (n: number) => (refuseNext = n),
      drain: () => decoded.push(...queued.splice(0)),
      target: {
        workerCount,
        queueStats: () => ({ length: queued.length, capacity }),
        submit: (d: ReceivedDatagram) => {
          if (refuseNext > 0 || queued.length >= capacity) {
            refuseNext--;
            return false;
          }
          queued.push({ ...d, payload: Buffer.from(d.payload) });
          return true;
        },
      },
    };
  }

  it('pauses at half of one worker share of the queue, loses nothing, and retries refused messages', async () => {
    const msgs = Array.from({ length: 40 }, (_, i) => ({ ...V6, bytes: i + 1 }));
    const stage = fakeStage(16, 2); // pauses at 4 queued
    const source = new PassThrough();
    const input = new Goflow2StreamInput({ path: 'test', maxMessageBytes: 65536, separator: 'newline' }, stage.target, {
      now: () => T,
      open: () => ({ stream: source, reopen: false }),
    });
    input.start();
    stage.refuse(2);
    source.end(encodeStream(msgs));
    let done = false;
    void input.done.then(() => (done = true));
    for (let i = 0; i < 200 && !done; i++) {
      await new Promise((r) => setTimeout(r, 6));
      expect(stage.target.queueStats().length).toBeLessThanOrEqual(4);
      stage.drain();
    }
    stage.drain();
    expect(done).toBe(true);
    const dec = createGoflow2Decoder();
    const bytes = stage.decoded.map((d) => {
      let b = 0;
      dec.decode(d.payload, CTX, undefined, OPTS, (r) => (b = r.bytes));
      return [d.srcAddr, b];
    });
    expect(bytes).toEqual(msgs.map((_, i) => ['192.0.2.1', i + 1]));
    expect(input.stats).toMatchObject({ messages: 40, queueRefusals: 2, framingErrors: {}, discardedBytes: 0 });
    expect(input.stats.pauses).toBeGreaterThan(0);
  });
});
