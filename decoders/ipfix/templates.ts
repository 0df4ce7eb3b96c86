/**
 * Template store: parsing template / options template sets (IPFIX and NetFlow v9) and
 * applying definitions and withdrawals to the per-session, per-domain state.
 *
 * A template set is parsed completely before anything is applied, so a malformed set
 * changes nothing (sets are atomic; see index.ts for the datagram-level rule).
 */
import { DecodeError } from '../errors.js';
import { Reader } from '../reader.js';
import { compilePlan, type TemplateField, VARLEN } from './plan.js';
import { newSamplingTable } from './sampling.js';
import { newSequenceState } from './sequence.js';
import {
  charge,
  countEviction,
  type DomainState,
  type FlowDecoderLimits,
  type FlowDecoderState,
  makeRoom,
  newDomainState,
  type SessionState,
  STATE_COST,
  type TemplateEntry,
} from './state.js';

/**
 * A template record's bytes, kept to recognise its periodic refresh (TemplateEntry.raw). A
 * Buffer of its own (not from the shared pool, which would keep an 8 KiB slab alive): its
 * compare() is a native memcmp, about half the cost of a JavaScript loop over 72 octets.
 */
function recordCopy(b: Uint8Array, from: number, to: number): Buffer {
  const copy = Buffer.allocUnsafeSlow(to - from);
  copy.set(b.subarray(from, to));
  return copy;
}

/** RFC 7011 section 3.3.2 set ids. */
export const IPFIX_TEMPLATE_SET = 2;
export const IPFIX_OPTIONS_TEMPLATE_SET = 3;
/** RFC 3954 section 5.2/6.1 flowset ids. */
export const V9_TEMPLATE_FLOWSET = 0;
export const V9_OPTIONS_FLOWSET = 1;
/** Data set ids and template ids start here (RFC 7011 3.3.2, RFC 3954 5.2). */
export const MIN_DATA_SET_ID = 256;

export type TemplateOp =
  /** `raw`: the template record as sent (see TemplateEntry.raw). */
  | { op: 'define'; id: number; kind: 'data' | 'options'; fields: TemplateField[]; raw: Buffer }
  | { op: 'withdraw'; id: number }
  | { op: 'withdraw-all'; kind: 'data' | 'options' };

function checkFieldCount(count: number, limits: FlowDecoderLimits, r: Reader, id: number): void {
  if (count > limits.maxFieldsPerTemplate) {
    throw new DecodeError('limit-exceeded', `template ${id}: ${count} fields > ${limits.maxFieldsPerTemplate}`, r.pos);
  }
  // Each specifier takes at least 4 octets: refuse counts the set cannot hold before looping.
  r.need(count * 4, `template ${id} field specifiers`);
}

/** A record made of nothing would make a data set loop forever; refuse such templates. */
export function checkNonEmpty(fields: readonly TemplateField[], id: number, at: number): void {
  let min = 0;
  for (const f of fields) min += f.length === VARLEN ? 1 : f.length;
  if (min === 0) throw new DecodeError('bad-template', `template ${id} describes empty records`, at);
}

/** True when everything from r.pos to r.end is zero: set padding (RFC 7011 section 3.3.1). */
function isPadding(r: Reader): boolean {
  for (let i = r.pos; i < r.end; i++) if (r.bytes[i] !== 0) return false;
  return true;
}

/** Parses the body of an IPFIX template set (id 2) or options template set (id 3). */
export function parseIpfixTemplateSet(r: Reader, setId: number, limits: FlowDecoderLimits): TemplateOp[] {
  const options = setId === IPFIX_OPTIONS_TEMPLATE_SET;
  const ops: TemplateOp[] = [];
  // A template record header is 4 octets; fewer left is padding.
  while (r.remaining >= 4) {
    if (isPadding(r)) break;
    const at = r.pos;
    const id = r.u16('template id');
    const count = r.u16('field count');
    if (count === 0) {
      // RFC 7011 section 8.1: withdrawal; id 2 (in set 2) / 3 (in set 3) withdraws them all.
      if (id === setId) ops.push({ op: 'withdraw-all', kind: options ? 'options' : 'data' });
      else if (id >= MIN_DATA_SET_ID) ops.push({ op: 'withdraw', id });
      else throw new DecodeError('bad-template', `withdrawal of reserved template id ${id}`, at);
      continue;
    }
    if (id < MIN_DATA_SET_ID) throw new DecodeError('bad-template', `template id ${id} < 256`, at);
    let scopeCount = 0;
    if (options) {
      scopeCount = r.u16('scope field count');
      // RFC 7011 section 3.4.2.2: the scope field count MUST NOT be zero.
      if (scopeCount === 0 || scopeCount > count) {
        throw new DecodeError('bad-template', `options template ${id}: scope count ${scopeCount} of ${count}`, at);
      }
    }
    checkFieldCount(count, limits, r, id);
    const fields: TemplateField[] = [];
    for (let i = 0; i < count; i++) {
      const raw = r.u16('field id');
      const length = r.u16('field length');
      // RFC 7011 section 3.2: the top bit of the id announces a 4-octet enterprise number.
      const pen = raw & 0x8000 ? r.u32('enterprise number') : 0;
      fields.push({ id: raw & 0x7fff, pen, length, scope: i < scopeCount });
    }
    checkNonEmpty(fields, id, at);
    ops.push({ op: 'define', id, kind: options ? 'options' : 'data', fields, raw: recordCopy(r.bytes, at, r.pos) });
  }
  return ops;
}

/**
 * Reads the `count` v9 field specifiers (type, length; no enterprise numbers) of template
 * `id`, the first `scopeCount` of them scope fields, with the field-count cap and the
 * empty-record check.
 */
function readV9Fields(r: Reader, limits: FlowDecoderLimits, id: number, at: number, count: number, scopeCount: number): TemplateField[] {
  checkFieldCount(count, limits, r, id);
  const fields: TemplateField[] = [];
  for (let i = 0; i < count; i++) {
    const fid = r.u16('field type');
    const length = r.u16('field length');
    fields.push({ id: fid, pen: 0, length, scope: i < scopeCount });
  }
  checkNonEmpty(fields, id, at);
  return fields;
}

/** Parses a NetFlow v9 template flowset (id 0), RFC 3954 section 5.2. */
export function parseV9TemplateFlowset(r: Reader, limits: FlowDecoderLimits): TemplateOp[] {
  const ops: TemplateOp[] = [];
  while (r.remaining >= 4) {
    if (isPadding(r)) break;
    const at = r.pos;
    const id = r.u16('template id');
    const count = r.u16('field count');
    if (id < MIN_DATA_SET_ID) throw new DecodeError('bad-template', `template id ${id} < 256`, at);
    // v9 has no withdrawal; an empty template is malformed.
    if (count === 0) throw new DecodeError('bad-template', `template ${id} has no fields`, at);
    const fields = readV9Fields(r, limits, id, at, count, 0);
    ops.push({ op: 'define', id, kind: 'data', fields, raw: recordCopy(r.bytes, at, r.pos) });
  }
  return ops;
}

/**
 * Parses a NetFlow v9 options template flowset (id 1), RFC 3954 section 6.1: scope and
 * option lengths are in octets (4 per field), and the flowset is padded to 32 bits.
 */
export function parseV9OptionsFlowset(r: Reader, limits: FlowDecoderLimits): TemplateOp[] {
  const ops: TemplateOp[] = [];
  while (r.remaining >= 6) {
    if (isPadding(r)) break;
    const at = r.pos;
    const id = r.u16('template id');
    const scopeLen = r.u16('option scope length');
    const optLen = r.u16('option length');
    if (id < MIN_DATA_SET_ID) throw new DecodeError('bad-template', `options template id ${id} < 256`, at);
    if (scopeLen % 4 !== 0 || optLen % 4 !== 0 || scopeLen === 0) {
      throw new DecodeError('bad-template', `options template ${id}: scope ${scopeLen} / option ${optLen} octets`, at);
    }
    const scopeCount = scopeLen / 4;
    const count = scopeCount + optLen / 4;
    const fields = readV9Fields(r, limits, id, at, count, scopeCount);
    ops.push({ op: 'define', id, kind: 'options', fields, raw: recordCopy(r.bytes, at, r.pos) });
  }
  return ops;
}

/** Estimated bytes of a template (or of its withdrawn marker, fields undefined). */
export function templateBytes(fields: number | undefined): number {
  return fields === undefined ? STATE_COST.withdrawn : STATE_COST.template + fields * STATE_COST.field;
}

export function getDomain(state: FlowDecoderState, session: SessionState, domain: number, nowMs: number): DomainState {
  let d = session.domains.get(domain);
  if (d === undefined) {
    const limits = state.limits;
    const cost = STATE_COST.domain + STATE_COST.samplingTable;
    if (session.domains.size >= limits.maxDomainsPerSession || !makeRoom(state, session, cost, nowMs)) {
      throw new DecodeError('limit-exceeded', `session ${session.key}: more than ${limits.maxDomainsPerSession} domains`);
    }
    d = newDomainState(session.address, domain, newSequenceState(), newSamplingTable());
    session.domains.set(domain, d);
    charge(state, session, cost);
  }
  return d;
}

export interface ApplyResult {
  defined: number[];
  templates: number;
  withdrawals: number;
}

/** Told of each template change applyTemplateOps makes (not of unchanged refreshes). */
export type TemplateChange = (event: 'learnt' | 'changed' | 'withdrawn', id: number, kind: 'data' | 'options', fields: number) => void;

/**
 * Applies parsed template operations to a domain. Throws DecodeError('limit-exceeded') when
 * the session's template cap is reached (earlier operations of the set stay applied: each
 * is individually valid, and the cap is a policy limit rather than malformed input).
 */
export function applyTemplateOps(
  session: SessionState,
  d: DomainState,
  ops: readonly TemplateOp[],
  protocol: 'ipfix' | 'netflow9',
  receivedMs: number,
  state: FlowDecoderState,
  result: ApplyResult,
  onChange?: TemplateChange,
): void {
  const limits = state.limits;
  for (const o of ops) {
    if (o.op === 'define') {
      const known = d.templates.has(o.id) || d.withdrawn.has(o.id);
      if (!known && session.templateCount >= limits.maxTemplatesPerSession) {
        countEviction(state, session.address, 'template-cap', 1);
        throw new DecodeError('limit-exceeded', `session ${session.key}: more than ${limits.maxTemplatesPerSession} templates`);
      }
      const old = d.templates.get(o.id);
      const same = old !== undefined && old.kind === o.kind && old.protocol === protocol && sameFields(old.fields, o.fields);
      if (!same) {
        // What the new layout adds over what it replaces (a live template or a withdrawn marker).
        const before = old !== undefined ? templateBytes(old.fields.length) : d.withdrawn.has(o.id) ? templateBytes(undefined) : 0;
        const delta = templateBytes(o.fields.length) - before;
        if (delta > 0 && !makeRoom(state, session, delta, receivedMs)) {
          countEviction(state, session.address, 'template-budget', 1);
          throw new DecodeError('limit-exceeded', `session ${session.key}: template ${o.id} does not fit the decoder state budget`);
        }
        charge(state, session, delta);
      }
      if (!known) session.templateCount++;
      // Redefinition after withdrawal reuses the marker's slot in the cap.
      d.withdrawn.delete(o.id);
      if (same) {
        // The periodic refresh every UDP exporter sends (RFC 7011 8.4): same layout, keep the
        // compiled plan instead of recompiling it.
        old.receivedMs = receivedMs;
        old.raw = o.raw;
        result.defined.push(o.id);
        result.templates++;
        continue;
      }
      const entry: TemplateEntry = {
        id: o.id,
        kind: o.kind,
        protocol,
        fields: o.fields,
        plan: compilePlan(o.id, o.kind, o.fields, protocol),
        receivedMs,
        raw: o.raw,
      };
      // A redefinition replaces the old layout outright (RFC 7011 8.1 for UDP re-use).
      d.templates.set(o.id, entry);
      onChange?.(old === undefined ? 'learnt' : 'changed', o.id, o.kind, o.fields.length);
      result.defined.push(o.id);
      result.templates++;
    } else if (o.op === 'withdraw') {
      const t = d.templates.get(o.id);
      if (withdraw(d, o.id, receivedMs)) {
        charge(state, session, templateBytes(undefined) - templateBytes(t!.fields.length));
        onChange?.('withdrawn', o.id, t!.kind, t!.fields.length);
      }
      result.withdrawals++;
    } else {
      for (const [id, t] of d.templates) {
        if (t.kind === o.kind && withdraw(d, id, receivedMs)) {
          charge(state, session, templateBytes(undefined) - templateBytes(t.fields.length));
          onChange?.('withdrawn', id, t.kind, t.fields.length);
        }
      }
      result.withdrawals++;
    }
  }
}

function sameFields(a: readonly TemplateField[], b: readonly TemplateField[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.id !== y.id || x.pen !== y.pen || x.length !== y.length || x.scope !== y.scope) return false;
  }
  return true;
}

/**
 * Replaces a live template by a withdrawn marker; the marker keeps its slot in the cap.
 * True when there was a live template to withdraw.
 */
function withdraw(d: DomainState, id: number, receivedMs: number): boolean {
  if (!d.templates.delete(id)) return false;
  d.withdrawn.set(id, receivedMs);
  return true;
  // Withdrawing an id we never saw: nothing to forget, and no marker (it would be a way for
  // an exporter to grow our state without bound).
}
