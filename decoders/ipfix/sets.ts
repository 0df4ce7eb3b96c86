/**
 * Set handling shared by IPFIX and NetFlow v9 once their headers are read: template
 * operations (with replay of held data), options data and flow data.
 */
import { DecodeError } from '../errors.js';
import { type DataContext, decodeDataSet, decodeOptionsSet } from './data.js';
import { evictExpired, hold, take } from './pending.js';
import { VOLUME_TOTALS } from './plan.js';
import { applyOptions, newSamplingTable, type SamplingFields, type SamplingTable } from './sampling.js';
import { type ApplyResult, applyTemplateOps, getDomain, type TemplateChange, type TemplateOp, templateBytes } from './templates.js';
import {
  charge,
  getSession,
  markActive,
  samplingBytes,
  STATE_COST,
  type DomainState,
  type FlowDecoderState,
  type PendingSet,
  type SessionState,
  type TemplateEntry,
} from './state.js';
import { type FlowDecodeContext, type FlowDecodeOptions, type FlowDecodeResult, newResult } from './types.js';

/** True when b[from, to) is all zero octets: padding, not a set (set ids and lengths are never 0). */
export function allZero(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}

/** What one message (datagram) is about, filled by the protocol decoder after its header. */
export interface MessageCtx {
  state: FlowDecoderState;
  session: SessionState;
  d: DomainState;
  protocol: 'ipfix' | 'netflow9';
  exporter: string;
  exporterAddr: string;
  domain: number;
  exportSecs: number;
  sysUptimeMs: number;
  receivedMs: number;
  opts: FlowDecodeOptions;
  result: FlowDecodeResult;
}

/**
 * The context of the message being decoded (openMessage). Until the first message its object
 * fields are unset; they are never read before openMessage fills them.
 */
const messageCtx: MessageCtx = {
  state: undefined as unknown as FlowDecoderState,
  session: undefined as unknown as SessionState,
  d: undefined as unknown as DomainState,
  protocol: 'ipfix',
  exporter: '',
  exporterAddr: '',
  domain: 0,
  exportSecs: 0,
  sysUptimeMs: -1,
  receivedMs: 0,
  opts: {},
  result: newResult(),
};

const dataCtx: DataContext = {
  protocol: 'ipfix',
  exporter: '',
  exporterAddr: '',
  domain: 0,
  exportMs: undefined,
  sysUptimeMs: -1,
  systemInitMs: -1,
  sessionSampling: newSamplingTable(),
  exporterSampling: undefined,
  sampling: {},
  withFields: false,
  withAddresses: true,
  sink: undefined,
  out: [],
  unknownSampling: 0,
  emitted: 0,
  noVolume: 0,
  receivedMs: 0,
  state: undefined,
  session: undefined,
  totals: undefined,
  outerHeaders: false,
};

/** The sampling table of exporter address and domain `key`, made (within maxSessions) when missing. */
function exporterTableFor(state: FlowDecoderState, key: string): SamplingTable {
  let t = state.exporterSampling.get(key);
  if (t === undefined) {
    if (state.exporterSampling.size >= state.limits.maxSessions) {
      const first = state.exporterSampling.entries().next();
      if (!first.done) {
        state.exporterSampling.delete(first.value[0]);
        state.exporterSamplingVersion++;
        state.bytes -= samplingBytes(first.value[1]);
      }
    }
    t = newSamplingTable();
    state.exporterSampling.set(key, t);
    state.exporterSamplingVersion++;
    state.bytes += STATE_COST.samplingTable;
  }
  return t;
}

/** The domain's exporter-wide sampling table, if any, through its memo (DomainState.exporterTable). */
function exporterTableOf(state: FlowDecoderState, d: DomainState): SamplingTable | undefined {
  if (d.exporterTableVersion !== state.exporterSamplingVersion) {
    d.exporterTable = state.exporterSampling.get(d.exporterKey);
    d.exporterTableVersion = state.exporterSamplingVersion;
  }
  return d.exporterTable;
}

/**
 * The context of one IPFIX / NetFlow v9 message once its header is read and its structure
 * checked: finds (or opens) the transport session and the domain, and evicts held sets past
 * their age before any set is handled. `sysUptimeMs` is -1 for IPFIX (no uptime in its header).
 */
export function openMessage(
  state: FlowDecoderState,
  ctx: FlowDecodeContext,
  opts: FlowDecodeOptions,
  result: FlowDecodeResult,
  protocol: MessageCtx['protocol'],
  domain: number,
  exportSecs: number,
  sysUptimeMs: number,
): MessageCtx {
  const session = getSession(state, ctx.exporterAddr, ctx.exporterPort, ctx.receivedMs);
  // One context, refilled per message: decoding is not re-entrant (decodeFlowDatagram), and
  // nothing keeps a MessageCtx past its message.
  const m = messageCtx;
  m.state = state;
  m.session = session;
  m.d = getDomain(state, session, domain, ctx.receivedMs);
  m.protocol = protocol;
  m.exporter = session.key;
  m.exporterAddr = ctx.exporterAddr;
  m.domain = domain;
  m.exportSecs = exportSecs;
  m.sysUptimeMs = sysUptimeMs;
  m.receivedMs = ctx.receivedMs;
  m.opts = opts;
  m.result = result;
  expirePending(m);
  return m;
}

/** Evicts held sets past their age; call once per datagram before handling its sets. */
function expirePending(m: MessageCtx): void {
  const n = evictExpired(m.state, m.session, m.receivedMs);
  m.result.stats.evicted += n;
  m.state.totals.pendingEvicted += n;
}

/**
 * The periodic template refresh every UDP exporter sends (RFC 7011 8.4, RFC 3954 5.2): a
 * template set whose every record is, byte for byte, a template this domain already holds
 * (same id, kind and protocol). Such a set is applied without parsing it: each template's
 * receive time is renewed and its held data replayed, exactly as the full path would do for
 * an unchanged redefinition. Returns the number of template records, or -1 (having changed
 * nothing) when the set is anything else: the caller then parses it in full, which also
 * reports whatever is wrong with it.
 *
 * `kind`: what the set defines; `minHeader`: the shortest template record header (4 octets;
 * 6 for v9 options templates), below which the rest of the set is padding.
 */
export function refreshTemplates(
  m: MessageCtx,
  b: Uint8Array,
  start: number,
  end: number,
  kind: 'data' | 'options',
  minHeader: number,
): number {
  const templates = m.d.templates;
  let n = 0;
  let p = start;
  // Pass 1: match every record; nothing is changed until the whole set matched.
  while (end - p >= minHeader) {
    const t = templates.get((b[p]! << 8) | b[p + 1]!);
    if (t === undefined || t.raw === undefined || t.kind !== kind || t.protocol !== m.protocol) {
      // Not a known template: the zero padding of RFC 7011 3.3.1 / RFC 3954 5.2 ends the set
      // (template ids are >= 256, so a padded tail never looks like one), anything else is
      // for the full parser.
      for (let i = p; i < end; i++) if (b[i] !== 0) return -1;
      break;
    }
    const raw = t.raw;
    const len = raw.length;
    if (len > end - p || raw.compare(b, p, p + len) !== 0) return -1;
    refreshed[n++] = t;
    p += len;
  }
  // Pass 2: apply, in order, then replay what was held for them (as handleTemplateOps).
  for (let k = 0; k < n; k++) refreshed[k]!.receivedMs = m.receivedMs;
  m.result.stats.templates += n;
  for (let k = 0; k < n; k++) {
    const id = refreshed[k]!.id;
    refreshed[k] = undefined;
    replay(m, id);
  }
  return n;
}

/** Scratch for refreshTemplates: the entries matched so far (cleared after use). */
const refreshed: Array<TemplateEntry | undefined> = [];

/** Applies a parsed template set, then decodes the data held for the templates it defined. */
export function handleTemplateOps(m: MessageCtx, ops: readonly TemplateOp[]): void {
  const r: ApplyResult = { defined: [], templates: 0, withdrawals: 0 };
  const tell = m.opts.onTemplate;
  // A closure only when someone listens (the daemon at debug level): none on the usual path.
  const onChange: TemplateChange | undefined =
    tell === undefined
      ? undefined
      : (event, templateId, kind, fields) =>
          tell({
            event,
            protocol: m.protocol,
            exporterAddr: m.exporterAddr,
            exporterPort: m.session.port,
            domain: m.domain,
            templateId,
            kind,
            fields,
          });
  try {
    applyTemplateOps(m.session, m.d, ops, m.protocol, m.receivedMs, m.state, r, onChange);
  } finally {
    m.result.stats.templates += r.templates;
    m.result.stats.withdrawals += r.withdrawals;
    // Held sets for templates defined before a cap was hit are still replayed.
    for (const id of r.defined) replay(m, id);
  }
}

function replay(m: MessageCtx, templateId: number): void {
  if (m.session.pending.length === 0) return;
  const held = take(m.state, m.session, m.domain, templateId);
  for (const p of held) {
    const out = m.result.records;
    const mark = out.length;
    const t = m.d.templates.get(templateId);
    if (t === undefined) continue;
    try {
      const n = decodeSetBody(m, p.protocol, t, p.body, 0, p.body.length, p.exportSecs, p.sysUptimeMs);
      m.result.stats.replayed += n;
      // Options records update sampling tables; only data records are emitted (a biflow's
      // reverse records too, no-volume ones not).
      if (t.kind === 'data') m.result.stats.records += dataCtx.emitted;
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      // A held set that does not fit its template is dropped alone (decodeDataSet emits
      // nothing from a set it rejects); the datagram carrying the template is fine and goes on.
      out.length = mark;
      m.result.errors.push(e);
    }
  }
}

/**
 * Decodes a data set (id >= 256) of the current message. Returns the number of records it
 * held (data or options), or -1 when that is unknown (template missing or withdrawn).
 */
export function handleDataSet(m: MessageCtx, setId: number, b: Uint8Array, start: number, end: number): number {
  let t = m.d.templates.get(setId);
  const st = m.result.stats;
  const lifetime = m.state.limits.templateLifetimeMs;
  if (t !== undefined && lifetime > 0 && m.receivedMs - t.receivedMs > lifetime) {
    // Expired (RFC 7011 8.4): forget it and hold the data until the exporter refreshes it.
    m.d.templates.delete(setId);
    m.session.templateCount--;
    charge(m.state, m.session, -templateBytes(t.fields.length));
    st.templatesExpired++;
    m.opts.onTemplate?.({
      event: 'expired',
      protocol: m.protocol,
      exporterAddr: m.exporterAddr,
      exporterPort: m.session.port,
      domain: m.domain,
      templateId: setId,
      kind: t.kind,
      fields: t.fields.length,
    });
    t = undefined;
  }
  if (t === undefined) {
    if (m.d.withdrawn.has(setId)) {
      // RFC 7011 8.1: never decode data with a layout the exporter took back.
      st.withdrawnDrops++;
      m.result.errors.push(new DecodeError('template-withdrawn', `data set for withdrawn template ${setId} dropped`, start));
      return -1;
    }
    st.templateMisses++;
    const entry: PendingSet = {
      protocol: m.protocol,
      domain: m.domain,
      templateId: setId,
      body: b.slice(start, end),
      receivedMs: m.receivedMs,
      exportSecs: m.exportSecs,
      sysUptimeMs: m.sysUptimeMs,
    };
    const evicted = hold(m.state, m.session, entry, m.receivedMs);
    st.evicted += evicted;
    m.state.totals.pendingEvicted += evicted;
    if (m.session.pending[m.session.pending.length - 1] === entry) st.buffered++;
    return -1;
  }
  const n = decodeSetBody(m, t.protocol, t, b, start, end, m.exportSecs, m.sysUptimeMs);
  if (t.kind === 'options') st.optionsRecords += n;
  else {
    st.dataRecords += n;
    st.records += dataCtx.emitted;
    if (n > 0) markActive(m.state, m.session, m.receivedMs);
  }
  return n;
}

/**
 * An options data set: its sampling fields go to the domain's and the exporter's tables.
 * A function of its own because its callback captures `m`: inside decodeSetBody that capture
 * made V8 allocate a context for every data set too (measured 215 bytes per datagram).
 */
function decodeOptionsBody(m: MessageCtx, t: TemplateEntry, b: Uint8Array, start: number, end: number): number {
  const limits = m.state.limits;
  const d = m.d;
  return decodeOptionsSet(b, start, end, t.plan, (f: SamplingFields) => {
    // Kept both per exact session and per exporter address: options from another source
    // port of the same exporter and domain still apply.
    const before = samplingBytes(d.sampling);
    applyOptions(d.sampling, f, limits.maxSamplingEntries);
    charge(m.state, m.session, samplingBytes(d.sampling) - before);
    const et = exporterTableFor(m.state, m.d.exporterKey);
    const etBefore = samplingBytes(et);
    applyOptions(et, f, limits.maxSamplingEntries);
    m.state.bytes += samplingBytes(et) - etBefore;
  });
}

function decodeSetBody(
  m: MessageCtx,
  protocol: 'ipfix' | 'netflow9',
  t: TemplateEntry,
  b: Uint8Array,
  start: number,
  end: number,
  exportSecs: number,
  sysUptimeMs: number,
): number {
  if (t.kind === 'options') return decodeOptionsBody(m, t, b, start, end);
  const c = dataCtx;
  c.protocol = protocol;
  c.exporter = m.exporter;
  c.exporterAddr = m.exporterAddr;
  c.domain = m.domain;
  c.exportMs = exportSecs * 1000;
  c.sysUptimeMs = protocol === 'netflow9' ? sysUptimeMs : -1;
  c.sessionSampling = m.d.sampling;
  c.exporterSampling = exporterTableOf(m.state, m.d);
  c.systemInitMs = m.d.sampling.systemInitMs >= 0 ? m.d.sampling.systemInitMs : (c.exporterSampling?.systemInitMs ?? -1);
  c.sampling = m.opts;
  c.withFields = m.opts.withFields === true;
  c.withAddresses = m.opts.withAddresses !== false;
  c.sink = m.opts.onRecord;
  c.out = m.result.records;
  c.unknownSampling = 0;
  c.emitted = 0;
  c.noVolume = 0;
  c.receivedMs = m.receivedMs;
  c.state = m.state;
  c.session = m.session;
  // The total-to-delta table is made for the first template that carries running totals.
  if ((t.plan.volume & VOLUME_TOTALS) !== 0) m.d.flowTotals ??= new Map();
  c.totals = m.d.flowTotals;
  c.outerHeaders = m.opts.outerFlowLabel === true;
  try {
    // A template with an outer and an inner header is read the outer way only for the
    // exporters configured so (FlowDecodeOptions.outerFlowLabel); one branch per set.
    const plan = m.opts.outerFlowLabel === true && t.plan.outer !== undefined ? t.plan.outer : t.plan;
    return decodeDataSet(b, start, end, plan, c);
  } finally {
    m.result.stats.unknownSampling += c.unknownSampling;
    m.state.totals.unknownSamplingRecords += c.unknownSampling;
    m.result.stats.noVolume += c.noVolume;
    m.state.totals.noVolumeRecords += c.noVolume;
  }
}
