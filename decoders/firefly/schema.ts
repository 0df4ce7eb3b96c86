/**
 * The firefly v1 schema (../shared/SCITAGS.md "Fireflies"; scitags.org firefly spec v1), in
 * zod. What is required: `version` 1, `flow-lifecycle` (state, start-time; end-time when the
 * state is `end`), `flow-id` (afi, src-ip, dst-ip, protocol, src-port, dst-port), `context`
 * (experiment-id, activity-id, optional application). `usage` and `netlink` are optional.
 * Unknown keys are ignored (hosts add their own); every string is length-bounded, so a
 * validated firefly is small whatever the sender put in it.
 */
import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * SciTags id spaces (SciTags flow label spec: 9 bits of experiment, 6 bits of activity).
 * Ids are declared by the host; bounding them here keeps every series downstream bounded.
 */
export const MAX_EXPERIMENT_ID = 511;
export const MAX_ACTIVITY_ID = 63;

/** Longest accepted time / address / application text (longer is a schema error). */
const MAX_TIME_CHARS = 64;
const MAX_ADDR_CHARS = 64;
const MAX_APPLICATION_CHARS = 256;

/**
 * RFC 3339 date-time (section 5.6), with a space allowed for the `T` and the offset optional
 * (treated as UTC). Fractions beyond milliseconds are truncated: ms is the collector's unit.
 */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$/;

/** ms since the epoch of an RFC 3339 time, or undefined when it is not one (or not a real date). */
export function parseTimeMs(text: string): number | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  // Second 60 is a leap second (RFC 3339 5.7); it counts as the next second's start.
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60) return undefined;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day > daysInMonth) return undefined;
  const ms = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  let t = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  if (m[9] !== undefined) {
    const offH = Number(m[10]);
    const offM = Number(m[11]);
    if (offH > 23 || offM > 59) return undefined;
    const off = (offH * 60 + offM) * 60_000;
    t += m[9] === '+' ? -off : off;
  }
  return Number.isFinite(t) ? t : undefined;
}

const time = z
  .string()
  .max(MAX_TIME_CHARS)
  .refine((s) => parseTimeMs(s) !== undefined, { message: 'not an RFC 3339 date-time' });
const port = z.number().int().min(0).max(65535);
const address = z.string().max(MAX_ADDR_CHARS);
/** Byte counts: non-negative integers JavaScript holds exactly. */
const byteCount = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const fireflySchema = z.object({
  version: z.literal(1),
  'flow-lifecycle': z
    .object({
      state: z.enum(['start', 'ongoing', 'end']),
      'start-time': time,
      'end-time': time.optional(),
      'current-time': time.optional(),
    })
    .superRefine((l, ctx) => {
      if (l.state === 'end' && l['end-time'] === undefined)
        ctx.addIssue({ code: 'custom', path: ['end-time'], message: 'required when state is end' });
    }),
  'flow-id': z
    .object({
      afi: z.enum(['ipv4', 'ipv6']),
      'src-ip': address,
      'dst-ip': address,
      protocol: z.enum(['tcp', 'udp']),
      'src-port': port,
      'dst-port': port,
    })
    .superRefine((f, ctx) => {
      const family = f.afi === 'ipv4' ? 4 : 6;
      for (const key of ['src-ip', 'dst-ip'] as const) {
        // Zone ids (fe80::1%eth0) pass isIP but name nothing outside the sending host.
        if (isIP(f[key]) !== family || f[key].includes('%'))
          ctx.addIssue({ code: 'custom', path: [key], message: `not an ${f.afi} address` });
      }
    }),
  context: z.object({
    'experiment-id': z.number().int().min(0).max(MAX_EXPERIMENT_ID),
    'activity-id': z.number().int().min(0).max(MAX_ACTIVITY_ID),
    application: z.string().max(MAX_APPLICATION_CHARS).optional(),
  }),
  usage: z.object({ received: byteCount.optional(), sent: byteCount.optional() }).optional(),
  // Free-form on the wire (flowd-go puts Linux tcp_info there); only numbers are read from it.
  netlink: z.record(z.string(), z.unknown()).optional(),
});

export type FireflyJson = z.output<typeof fireflySchema>;
