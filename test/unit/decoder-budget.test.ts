import { describe, expect, it } from 'vitest';
import {
  createFlowDecoderState,
  decodeFlowDatagram,
  flowStateFrom,
  recountStateBytes,
  snapshotFlowState,
  STATE_COST,
} from '../../decoders/ipfix/index.js';
import type { FlowDecoderState } from '../../decoders/ipfix/index.js';
import { f, ipfixDataSet, ipfixMessage, ipfixTemplateSet, ipfixWithdrawalSet } from '../builders/ipfix.js';

const V4 = [f('sourceIPv4Address', 4), f('destinationIPv4Address', 4), f('octetDeltaCount', 4), f('packetDeltaCount', 4)];
const rec = { sourceIPv4Address: '10.0.0.1', destinationIPv4Address: '10.0.0.2', octetDeltaCount: 1000, packetDeltaCount: 1 };
const TEMPLATE = ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields: V4 }])]);
const DATA = ipfixMessage({}, [ipfixDataSet(256, V4, [rec])]);
const BOTH = ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields: V4 }]), ipfixDataSet(256, V4, [rec])]);

function send(st: FlowDecoderState, bytes: Uint8Array, addr: string, port: number, ms: number) {
  return decodeFlowDatagram(bytes, { exporterAddr: addr, exporterPort: port, receivedMs: ms }, st);
}

/** Sessions of one LRU list, most recently used first. */
function order(st: FlowDecoderState, list: 0 | 1): string[] {
  const out: string[] = [];
  for (let s = st.lru[list].head; s !== undefined; s = s.older) out.push(s.key);
  return out;
}

// A session with one domain and one 4-field template.
const ONE_TEMPLATE = STATE_COST.session + STATE_COST.domain + STATE_COST.samplingTable + STATE_COST.template + 4 * STATE_COST.field;

describe('session LRU (O(1))', () => {
  it('keeps sessions in use order: touch moves to the head, new sessions evict the tail', () => {
    const st = createFlowDecoderState({ maxSessions: 3 });
    send(st, TEMPLATE, '192.0.2.1', 1, 1);
    send(st, TEMPLATE, '192.0.2.1', 2, 2);
    send(st, TEMPLATE, '192.0.2.1', 3, 3);
    send(st, TEMPLATE, '192.0.2.1', 1, 4);
    expect(order(st, 0)).toEqual(['192.0.2.1:1', '192.0.2.1:3', '192.0.2.1:2']);
    send(st, TEMPLATE, '192.0.2.1', 4, 5);
    expect(order(st, 0)).toEqual(['192.0.2.1:4', '192.0.2.1:1', '192.0.2.1:3']);
    expect(st.evictions['session-lru']).toBe(1);
    expect(st.evictionsByAddress.get('192.0.2.1')).toBe(1);
  });

  it('looks at the same number of sessions per eviction whatever the table size', () => {
    const examinedPerEviction = (size: number): number => {
      const st = createFlowDecoderState({ maxSessions: size });
      for (let p = 0; p < size; p++) send(st, TEMPLATE, '198.51.100.1', p, p);
      const before = st.examined;
      for (let p = size; p < size + 1000; p++) send(st, TEMPLATE, '198.51.100.1', p, p);
      expect(st.evictions['session-lru']).toBe(1000);
      return (st.examined - before) / 1000;
    };
    // One look at the tail of the new-session list per eviction, at 100 and at 10,000 sessions.
    expect(examinedPerEviction(100)).toBe(1);
    expect(examinedPerEviction(10_000)).toBe(1);
  });

  it('never evicts an active session for a new one; refuses the new one when all are active', () => {
    const st = createFlowDecoderState({ maxSessions: 2, activeSessionMs: 60_000 });
    expect(send(st, BOTH, '192.0.2.1', 1, 1000).records).toHaveLength(1);
    // Spoofed new sessions only push each other out.
    for (let i = 0; i < 50; i++) send(st, TEMPLATE, `203.0.113.${i}`, 9, 1001 + i);
    expect(st.sessions.has('192.0.2.1:1')).toBe(true);
    expect(st.evictions['session-lru']).toBe(49);
    expect(order(st, 1)).toEqual(['192.0.2.1:1']);
    // The second slot becomes active too: a new session is refused, not let in.
    expect(send(st, BOTH, '203.0.113.49', 9, 2000).records).toHaveLength(1);
    const r = send(st, TEMPLATE, '203.0.113.200', 9, 2001);
    expect(r.errors.map((e) => e.code)).toEqual(['limit-exceeded']);
    expect(st.evictions['session-refused']).toBe(1);
    // Once idle past activeSessionMs, the least recently used active session may go.
    send(st, TEMPLATE, '203.0.113.201', 9, 2000 + 60_001);
    expect([...st.sessions.keys()].sort()).toEqual(['203.0.113.201:9', '203.0.113.49:9']);
    expect(st.evictions['session-lru']).toBe(50);
  });
});

describe('state budget accounting', () => {
  it('counts templates, withdrawals, held data and replay exactly', () => {
    const st = createFlowDecoderState();
    send(st, DATA, '192.0.2.1', 1, 1); // held: no template yet
    const held = DATA.length - 16 - 4; // the set body
    expect(st.bytes).toBe(STATE_COST.session + STATE_COST.domain + STATE_COST.samplingTable + held + STATE_COST.pendingSet);
    expect(st.bytes).toBe(recountStateBytes(st));
    send(st, TEMPLATE, '192.0.2.1', 1, 2); // replays the held set
    expect(st.bytes).toBe(ONE_TEMPLATE);
    send(st, ipfixMessage({}, [ipfixWithdrawalSet([256])]), '192.0.2.1', 1, 3);
    expect(st.bytes).toBe(ONE_TEMPLATE - STATE_COST.template - 4 * STATE_COST.field + STATE_COST.withdrawn);
    expect(st.bytes).toBe(recountStateBytes(st));
    expect(st.addresses.get('192.0.2.1')).toEqual({ bytes: st.bytes, sessions: 1 });
  });

  it('stays under the budget: held data goes first, then the least recently used new sessions', () => {
    const budget = 10 * ONE_TEMPLATE;
    const st = createFlowDecoderState({ stateBudgetBytes: budget });
    send(st, DATA, '192.0.2.1', 1, 1); // held data of an active-to-be exporter
    for (let p = 0; p < 40; p++) {
      send(st, TEMPLATE, `198.51.100.${p}`, 5, 10 + p);
      expect(st.bytes).toBeLessThanOrEqual(budget);
    }
    expect(st.bytes).toBe(recountStateBytes(st));
    expect(st.evictions['pending-budget']).toBe(1);
    expect(st.evictions.budget).toBe(31);
    // Its held data went first; the session itself (never active) then went like the others.
    expect(st.sessions.size).toBe(10);
    expect(st.sessions.has('192.0.2.1:1')).toBe(false);
  });

  it('caps one address at its fair share so it cannot evict another exporter', () => {
    // 64 shares minimum; two addresses: each may hold half of the budget.
    const fields = Array.from({ length: 100 }, (_, i) => f(1000 + i, 4));
    const big = (id: number) => ipfixMessage({}, [ipfixTemplateSet([{ id, fields }])]);
    const perTemplate = STATE_COST.template + 100 * STATE_COST.field;
    const budget = 40 * perTemplate;
    const st = createFlowDecoderState({ stateBudgetBytes: budget });
    expect(send(st, BOTH, '192.0.2.1', 1, 1).records).toHaveLength(1);
    let refused = 0;
    for (let id = 300; id < 360; id++) refused += send(st, big(id), '203.0.113.7', 2, 2).errors.length;
    const hog = st.addresses.get('203.0.113.7')!.bytes;
    expect(hog).toBeLessThanOrEqual(budget / 2);
    expect(refused).toBe(60 - Math.floor((budget / 2 - STATE_COST.session - STATE_COST.domain - STATE_COST.samplingTable) / perTemplate));
    expect(st.evictions['template-budget']).toBe(refused);
    expect(st.sessions.has('192.0.2.1:1')).toBe(true);
    expect(send(st, DATA, '192.0.2.1', 1, 3).records).toHaveLength(1);
  });

  it('restores within the budget and keeps the active list', () => {
    const st = createFlowDecoderState();
    send(st, BOTH, '192.0.2.1', 1, 1);
    send(st, TEMPLATE, '192.0.2.2', 1, 2);
    const doc = snapshotFlowState(st, 3);
    const back = flowStateFrom(JSON.parse(JSON.stringify(doc)) as typeof doc);
    expect(back.bytes).toBe(st.bytes);
    expect(order(back, 1)).toEqual(['192.0.2.1:1']);
    expect(order(back, 0)).toEqual(['192.0.2.2:1']);
    const small = flowStateFrom(doc, { stateBudgetBytes: ONE_TEMPLATE });
    expect([...small.sessions.keys()]).toEqual(['192.0.2.2:1']);
  });
});
