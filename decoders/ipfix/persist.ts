/**
 * Saving and restoring the IPFIX / NetFlow v9 decoder state, so a collector restart does not
 * forget templates. Exporters refresh templates only every few minutes (Cisco's default is
 * 30 minutes); without this, every data set in that window after a restart would wait for a
 * template that the buffer's age limit gives up on, and the traffic would be lost.
 *
 * What is kept: per transport session and domain the templates (fields; plans are compiled
 * again), withdrawn ids, sequence state and sampling learnt from options; the per-exporter
 * sampling tables; the data sets still waiting for their template. The document is checked
 * on the way in (it is a file on disk, so it may be truncated or edited), against the same
 * caps as live decoding.
 */
import { z } from 'zod';
import { compilePlan, VARLEN } from './plan.js';
import { newSamplingTable, type SamplingTable } from './sampling.js';
import { checkNonEmpty, templateBytes } from './templates.js';
import {
  addSession,
  createFlowDecoderState,
  type FlowDecoderLimits,
  type FlowDecoderState,
  newDomainState,
  newSession,
  samplingBytes,
  type SessionState,
  STATE_COST,
} from './state.js';

export const FLOW_STATE_VERSION = 1;

const u32 = z.number().int().min(0).max(0xffffffff);
const finite = z.number().finite();
const entries = <T extends z.ZodTypeAny>(value: T) => z.array(z.tuple([z.number().int(), value]));

const samplingSchema = z.object({
  domainRate: finite.min(0),
  samplers: entries(finite.min(0)),
  selectors: entries(finite.min(0)),
  interfaces: entries(finite.min(0)),
  interfaceNames: entries(z.string().max(64)),
  systemInitMs: finite,
});

const fieldSchema = z.object({
  id: z.number().int().min(0).max(0x7fff),
  pen: u32,
  length: z.number().int().min(0).max(VARLEN),
  scope: z.boolean(),
});

const templateSchema = z.object({
  id: z.number().int().min(256).max(0xffff),
  kind: z.enum(['data', 'options']),
  protocol: z.enum(['ipfix', 'netflow9']),
  fields: z.array(fieldSchema).min(1),
  receivedMs: finite,
});

const domainSchema = z.object({
  domain: u32,
  templates: z.array(templateSchema),
  withdrawn: entries(finite),
  sequence: z.object({
    expected: z.number().int().min(-1),
    lost: finite.min(0),
    late: finite.min(0),
    resets: finite.min(0),
    gaps: finite.min(0),
  }),
  sampling: samplingSchema,
});

const pendingSchema = z.object({
  protocol: z.enum(['ipfix', 'netflow9']),
  domain: u32,
  templateId: z.number().int().min(256).max(0xffff),
  body: z.string().max(1 << 20),
  receivedMs: finite,
  exportSecs: finite,
  sysUptimeMs: finite,
});

const documentSchema = z.object({
  version: z.literal(FLOW_STATE_VERSION),
  savedMs: finite,
  sessions: z.array(
    z.object({
      address: z.string().min(1).max(64),
      port: z.number().int().min(0).max(65535),
      lastSeenMs: finite,
      /** Absent in files written before budgets (version 1 documents stay readable). */
      lastDataMs: finite.optional(),
      domains: z.array(domainSchema),
      pending: z.array(pendingSchema),
    }),
  ),
  exporterSampling: z.array(z.tuple([z.string().max(80), samplingSchema])),
});

export type PersistedFlowState = z.infer<typeof documentSchema>;
export type PersistedSession = PersistedFlowState['sessions'][number];
export type PersistedSampling = PersistedFlowState['exporterSampling'][number];

/** One session's line of the streamed state file (see src/serve/decoder-state-file.ts). */
export const sessionSchema = documentSchema.shape.sessions.element;
export const exporterSamplingSchema = documentSchema.shape.exporterSampling.element;

function samplingOut(t: SamplingTable): PersistedFlowState['exporterSampling'][number][1] {
  return {
    domainRate: t.domainRate,
    samplers: [...t.samplers],
    selectors: [...t.selectors],
    interfaces: [...t.interfaces],
    interfaceNames: [...t.interfaceNames],
    systemInitMs: t.systemInitMs,
  };
}

function samplingIn(p: PersistedFlowState['exporterSampling'][number][1], cap: number): SamplingTable {
  const t = newSamplingTable();
  t.domainRate = p.domainRate;
  t.systemInitMs = p.systemInitMs;
  for (const [k, v] of p.samplers.slice(0, cap)) t.samplers.set(k, v);
  for (const [k, v] of p.selectors.slice(0, cap)) t.selectors.set(k, v);
  for (const [k, v] of p.interfaces.slice(0, cap)) t.interfaces.set(k, v);
  for (const [k, v] of p.interfaceNames.slice(0, cap)) t.interfaceNames.set(k, v);
  return t;
}

/**
 * Sessions most valuable first: active ones (most recently used first), then new ones. A
 * save cut short by its size cap keeps what matters.
 */
function sessionsByRecency(state: FlowDecoderState): SessionState[] {
  const out: SessionState[] = [];
  for (const l of [state.lru[1], state.lru[0]]) for (let s = l.head; s !== undefined; s = s.older) out.push(s);
  return out;
}

/** The state as a JSON-ready document. */
export function snapshotFlowState(state: FlowDecoderState, nowMs: number): PersistedFlowState {
  return {
    version: FLOW_STATE_VERSION,
    savedMs: nowMs,
    sessions: sessionsByRecency(state).map((s) => ({
      address: s.address,
      port: s.port,
      lastSeenMs: s.lastSeenMs,
      ...(s.lastDataMs >= 0 ? { lastDataMs: s.lastDataMs } : {}),
      domains: [...s.domains.values()].map((d) => ({
        domain: d.domain,
        templates: [...d.templates.values()].map((t) => ({
          id: t.id,
          kind: t.kind,
          protocol: t.protocol,
          fields: t.fields,
          receivedMs: t.receivedMs,
        })),
        withdrawn: [...d.withdrawn],
        sequence: { ...d.sequence },
        sampling: samplingOut(d.sampling),
      })),
      pending: s.pending.map((p) => ({ ...p, body: Buffer.from(p.body.buffer, p.body.byteOffset, p.body.byteLength).toString('base64') })),
    })),
    exporterSampling: [...state.exporterSampling].map(([k, t]) => [k, samplingOut(t)]),
  };
}

/**
 * A decoder state from a saved document. Throws an Error naming the problem when the
 * document is not one we wrote (the caller then starts empty). Anything beyond the limits
 * in force (which may have been lowered since) is dropped, oldest sessions first.
 */
export function restoreFlowState(doc: unknown, limits: Partial<FlowDecoderLimits> = {}): FlowDecoderState {
  return flowStateFrom(parseFlowState(doc), limits);
}

/** Checks a saved document's shape (throws an Error naming the problem); nothing is built. */
export function parseFlowState(doc: unknown): PersistedFlowState {
  const parsed = documentSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`decoder state is not valid at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'unknown problem'}`);
  }
  return parsed.data;
}

/**
 * A decoder state from a document parseFlowState() accepted (the daemon checks the file once
 * and hands each decode worker its share). Throws on templates no decoder could use.
 */
export function flowStateFrom(doc: PersistedFlowState, limits: Partial<FlowDecoderLimits> = {}): FlowDecoderState {
  const state = createFlowDecoderState(limits);
  const lim = state.limits;
  // Most recent first, so what the limits in force (maxSessions, the budget) leave out is
  // the least recently seen; added to the lists oldest first so the order survives.
  const kept: SessionState[] = [];
  let bytes = 0;
  for (const ps of [...doc.sessions].sort((a, b) => b.lastSeenMs - a.lastSeenMs)) {
    if (kept.length >= lim.maxSessions) break;
    const session = sessionFrom(ps, lim);
    if (bytes + session.bytes + STATE_COST.session > lim.stateBudgetBytes) continue;
    bytes += session.bytes + STATE_COST.session;
    kept.push(session);
  }
  for (const session of kept.reverse()) addSession(state, session, session.lastDataMs >= 0);
  for (const [k, t] of doc.exporterSampling.slice(0, lim.maxSessions)) {
    const table = samplingIn(t, lim.maxSamplingEntries);
    if (state.bytes + samplingBytes(table) > lim.stateBudgetBytes) break;
    state.exporterSampling.set(k, table);
    state.exporterSamplingVersion++;
    state.bytes += samplingBytes(table);
  }
  return state;
}

/** One saved session, its bytes estimated (not yet in any state). Throws on unusable templates. */
export function sessionFrom(ps: PersistedSession, lim: FlowDecoderLimits): SessionState {
  const session = newSession(ps.address, ps.port, ps.lastSeenMs);
  session.lastDataMs = ps.lastDataMs ?? -1;
  for (const pd of ps.domains.slice(0, lim.maxDomainsPerSession)) {
    const d = newDomainState(ps.address, pd.domain, { ...pd.sequence }, samplingIn(pd.sampling, lim.maxSamplingEntries));
    session.bytes += STATE_COST.domain + samplingBytes(d.sampling);
    for (const t of pd.templates) {
      if (session.templateCount >= lim.maxTemplatesPerSession || t.fields.length > lim.maxFieldsPerTemplate) continue;
      // Same checks as a template from the wire: an empty record layout would loop forever.
      checkNonEmpty(t.fields, t.id, 0);
      d.templates.set(t.id, {
        id: t.id,
        kind: t.kind,
        protocol: t.protocol,
        fields: t.fields,
        plan: compilePlan(t.id, t.kind, t.fields, t.protocol),
        receivedMs: t.receivedMs,
        raw: undefined,
      });
      session.templateCount++;
      session.bytes += templateBytes(t.fields.length);
    }
    for (const [id, ms] of pd.withdrawn) {
      if (session.templateCount >= lim.maxTemplatesPerSession) break;
      if (d.templates.has(id)) continue;
      d.withdrawn.set(id, ms);
      session.templateCount++;
      session.bytes += templateBytes(undefined);
    }
    session.domains.set(d.domain, d);
  }
  for (const pp of ps.pending) {
    const body = new Uint8Array(Buffer.from(pp.body, 'base64'));
    if (session.pendingBytes + body.length > lim.maxPendingBytes) break;
    session.pending.push({ ...pp, body });
    session.pendingBytes += body.length;
    session.bytes += body.length + STATE_COST.pendingSet;
  }
  return session;
}
