/**
 * Decode cost per datagram while spoofed new sessions arrive: a full session table (10,000),
 * then rounds of one datagram from a new address and two from one legitimate session. Run
 * after a build: `node dist/test/bench/session-flood.js` (prints one JSON line).
 */
import { createFlowDecoderState, decodeFlowDatagram } from '../../decoders/ipfix/index.js';
import { f, ipfixDataSet, ipfixMessage, ipfixTemplateSet } from '../builders/ipfix.js';

const V4 = [f('sourceIPv4Address', 4), f('destinationIPv4Address', 4), f('octetDeltaCount', 4), f('packetDeltaCount', 4)];
const rec = { sourceIPv4Address: '10.0.0.1', destinationIPv4Address: '10.0.0.2', octetDeltaCount: 1000, packetDeltaCount: 1 };
const template = ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields: V4 }])]);
const data = ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields: V4 }]), ipfixDataSet(256, V4, [rec])]);

const SESSIONS = 10_000;
const ROUNDS = 60_000;
const st = createFlowDecoderState({ maxSessions: SESSIONS });
for (let i = 0; i < SESSIONS; i++) {
  decodeFlowDatagram(template, { exporterAddr: `10.${i >> 8}.${i & 255}.1`, exporterPort: 1, receivedMs: i }, st);
}
let datagrams = 0;
let legitRecords = 0;
const t0 = process.hrtime.bigint();
for (let i = 0; i < ROUNDS; i++) {
  const ms = SESSIONS * 2 + i;
  decodeFlowDatagram(template, { exporterAddr: `11.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, exporterPort: 2, receivedMs: ms }, st);
  for (let k = 0; k < 2; k++) {
    legitRecords += decodeFlowDatagram(data, { exporterAddr: '192.0.2.1', exporterPort: 9, receivedMs: ms }, st).records.length;
  }
  datagrams += 3;
}
const us = Number(process.hrtime.bigint() - t0) / 1000 / datagrams;
console.log(JSON.stringify({ usPerDatagram: Number(us.toFixed(2)), legitRecords, expected: 2 * ROUNDS, sessions: st.sessions.size }));
