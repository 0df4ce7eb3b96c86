/**
 * The golden goflow2 stream (test/fixtures/goflow2_golden.bin): two FlowMessages as goflow2
 * -format=bin writes them, from the messages below. `node dist/test/support/goflow2-golden.js`
 * rewrites the .bin; test/golden/goflow2.test.ts checks it with `protoc --decode_raw` against
 * goflow2_golden.txt (written by hand from protoc's output, each field number checked against
 * goflow2's pb/flow.proto) and holds the encoder to the same bytes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addressBytes, encodeStream, type FlowMessageFields } from './goflow2.js';

export const GOLDEN_MESSAGES: FlowMessageFields[] = [
  {
    type: 4, // IPFIX
    time_received_ns: '1700000002000000000',
    sampling_rate: 1000,
    sampler_address: addressBytes('192.0.2.1'),
    time_flow_start_ns: '1700000000000000000',
    time_flow_end_ns: '1700000001500000000',
    bytes: 150000,
    packets: 100,
    src_addr: addressBytes('2001:db8::1'),
    dst_addr: addressBytes('2001:db8:1::2'),
    etype: 0x86dd,
    proto: 6,
    src_port: 40000,
    dst_port: 1094,
    in_if: 10,
    out_if: 20,
    ipv6_flow_label: 0x10004, // SciTags ATLAS (2), activity 1
  },
  {
    type: 1, // sFlow v5
    time_received_ns: '1700000002000000000',
    sampling_rate: 0, // not stated: the configured default
    sampler_address: addressBytes('2001:db8:ff::1'),
    bytes: 1500,
    packets: 1,
    src_addr: addressBytes('198.51.100.1'),
    dst_addr: addressBytes('198.51.100.2'),
    etype: 0x0800,
    proto: 17,
    in_if: 3,
    out_if: 4,
  },
];

export const GOLDEN_BIN = join(import.meta.dirname, '..', 'fixtures', 'goflow2_golden.bin');

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(GOLDEN_BIN.replace(`${join('dist', 'test')}`, 'test'), encodeStream(GOLDEN_MESSAGES));
  process.stdout.write('wrote test/fixtures/goflow2_golden.bin\n');
}
