import swagger from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, LogController } from 'fastify';
import { VERSION } from '../version.js';
import {
  BadParameter,
  NotAvailable,
  CLASS_PATTERN,
  GROUP_BY_DIMENSIONS,
  GROUP_BY_PATTERN,
  LIST_PATTERN,
  STEP_PATTERN,
  TIME_FORMS,
  TIME_PATTERN,
  TRAFFIC_CLASSES,
} from './params.js';
import { API_BODY_LIMIT_BYTES, type ApiSecurity, DEFAULT_API_SECURITY, registerSecurity } from './security.js';
import { DEFAULT_LINKS_LIMIT, type LinksParams, linksQuery, MAX_LINKS_LIMIT } from './links.js';
import {
  FIREFLY_GROUP_BY_DIMENSIONS,
  FIREFLY_GROUP_BY_PATTERN,
  type FireflyParams,
  fireflyQuery,
  FireflyStoreUnavailable,
  IP_VERSION_PATTERN,
} from './fireflies.js';
import { defaultPageDir, isPublicPath, pageFilePaths, registerPage } from './page.js';
import { type TrafficParams, trafficQuery, transitionQuery } from './traffic.js';
import { DEFAULT_NAT64_DESTINATIONS_LIMIT, type Nat64DestinationsParams, nat64DestinationsQuery } from './nat64-top.js';
import { type MarkingParams, markingQuery } from './marking.js';
import { MARKING_OUTCOMES } from '../fireflies/marking.js';
import { CORRELATION_GROUP_BY, CORRELATION_GROUP_BY_PATTERN, type CorrelationParams, correlationQuery } from './correlation.js';
import { type ApiDeps, type ApiLimits, DEFAULT_API_LIMITS, type ExporterInfo } from './types.js';

// ---------------------------------------------------------------------------------------
// Parameters: JSON schema + the sentence a 400 answer uses when the pattern does not match
// ---------------------------------------------------------------------------------------

const PARAMETERS = {
  from: {
    schema: { type: 'string', maxLength: 64, pattern: TIME_PATTERN },
    description: `Start of the range, inclusive (default now-1h): ${TIME_FORMS}.`,
    expect: `must be one of: ${TIME_FORMS}`,
  },
  to: {
    schema: { type: 'string', maxLength: 64, pattern: TIME_PATTERN },
    description: `End of the range, exclusive (default now); same forms as from.`,
    expect: `must be one of: ${TIME_FORMS}`,
  },
  step: {
    schema: { type: 'string', maxLength: 10, pattern: STEP_PATTERN },
    description:
      'Width of one point: seconds (300) or with a unit (30s, 5m, 1h, 1d); a multiple of the bucket width. Default: the bucket width, or the smallest multiple of it that keeps the series within the point limit.',
    expect: 'must be a duration in seconds (300) or with a unit (30s, 5m, 1h, 1d)',
  },
  groupBy: {
    schema: { type: 'string', maxLength: 200, pattern: GROUP_BY_PATTERN },
    description: `Comma-separated dimensions among ${GROUP_BY_DIMENSIONS.join(', ')} (default community,activity; empty for one series). class is added whenever community or activity is grouped, so unmarked traffic never mixes with unregistered pairs.`,
    expect: `must be a comma-separated list of ${GROUP_BY_DIMENSIONS.join(', ')}`,
  },
  community: {
    schema: { type: 'string', minLength: 1, maxLength: 2000, pattern: LIST_PATTERN },
    description: 'Experiments to keep: comma-separated ids (0..511) or registry names (case-insensitive), e.g. atlas,cms or 2,3.',
    expect: 'must be a comma-separated list of experiment ids or names',
  },
  activity: {
    schema: { type: 'string', minLength: 1, maxLength: 2000, pattern: LIST_PATTERN },
    description:
      'Activities to keep: comma-separated ids (0..63) or registry names (case-insensitive; a name matches its id in every experiment, or in the experiments of `community` when given).',
    expect: 'must be a comma-separated list of activity ids or names',
  },
  link: {
    schema: { type: 'string', minLength: 1, maxLength: 2000, pattern: LIST_PATTERN },
    description: 'Links to keep: comma-separated configured link names or exporter:ifIndex (192.0.2.1:7, [2001:db8::1]:7).',
    expect: 'must be a comma-separated list of link names or exporter:ifIndex',
  },
  exporter: {
    schema: { type: 'string', minLength: 1, maxLength: 2000, pattern: LIST_PATTERN },
    description: 'Exporters to keep: comma-separated addresses.',
    expect: 'must be a comma-separated list of exporter addresses',
  },
  class: {
    schema: { type: 'string', maxLength: 200, pattern: CLASS_PATTERN },
    description: `Traffic classes to keep: ${TRAFFIC_CLASSES.join(', ')}.`,
    expect: `must be a comma-separated list of ${TRAFFIC_CLASSES.join(', ')}`,
  },
  limit: {
    schema: { type: 'string', maxLength: 5, pattern: '^\\d{1,5}$' },
    description: `Most links listed that only the store knows (no configured or learnt name), largest first: 0 to ${MAX_LINKS_LIMIT} (default ${DEFAULT_LINKS_LIMIT}); the rest are counted in omittedLinks.`,
    expect: `must be an integer from 0 to ${MAX_LINKS_LIMIT}`,
  },
  ipVersion: {
    schema: { type: 'string', maxLength: 3, pattern: IP_VERSION_PATTERN },
    description: 'IP versions to keep: 4, 6 or 4,6.',
    expect: 'must be 4, 6 or 4,6',
  },
  srcSite: {
    schema: { type: 'string', minLength: 1, maxLength: 2000, pattern: LIST_PATTERN },
    description: "Source sites to keep: comma-separated site names (from `sites:` or WLCG-CRIC), 'unknown' for unmatched addresses.",
    expect: 'must be a comma-separated list of site names',
  },
  dstSite: {
    schema: { type: 'string', minLength: 1, maxLength: 2000, pattern: LIST_PATTERN },
    description: "Destination sites to keep: comma-separated site names, 'unknown' for unmatched addresses.",
    expect: 'must be a comma-separated list of site names',
  },
  site: {
    schema: { type: 'string', minLength: 1, maxLength: 2000, pattern: LIST_PATTERN },
    description:
      "Sites to keep, either side: comma-separated site names, 'unknown' for unmatched addresses (with groupBy site: the sides on a listed site).",
    expect: 'must be a comma-separated list of site names',
  },
  provisional: {
    schema: { type: 'string', maxLength: 5, pattern: '^(0|1|true|false)$' },
    description:
      "Also count the buckets the collector has not written to the store yet (the open bucket, so data shows within seconds of arriving, and closed ones updated since their last write), from its memory; their steps' points carry provisional: true and may still grow. Default false: only what the store holds.",
    expect: 'must be 0, 1, true or false',
  },
  strict: {
    schema: { type: 'string', maxLength: 5, pattern: '^(0|1|true|false)$' },
    description: 'Answer 503 while degraded (1 / true), or 200 (0 / false); default: the health.strict option.',
    expect: 'must be 0, 1, true or false',
  },
} as const;

type ParameterName = keyof typeof PARAMETERS;

interface ParameterDef {
  schema: Record<string, unknown>;
  description: string;
  expect: string;
}

/** Parameters whose meaning differs on one route (groupBy of /api/v1/fireflies). */
const ROUTE_PARAMETERS: Record<string, Partial<Record<ParameterName, ParameterDef>>> = {
  '/api/v1/correlation': {
    groupBy: {
      schema: { type: 'string', maxLength: 200, pattern: CORRELATION_GROUP_BY_PATTERN },
      description: `Comma-separated dimensions among ${CORRELATION_GROUP_BY.join(', ')} (default community; empty for one series).`,
      expect: `must be a comma-separated list of ${CORRELATION_GROUP_BY.join(', ')}`,
    },
    exporter: {
      schema: { type: 'string', minLength: 1, maxLength: 2000, pattern: LIST_PATTERN },
      description:
        'Exporters whose flow-label traffic is compared (default all; a flow crossing several exporting routers counts at each, so name the border routers for a one-to-one comparison).',
      expect: 'must be a comma-separated list of exporter addresses',
    },
  },
  '/api/v1/transition/nat64-destinations': {
    limit: {
      schema: { type: 'string', maxLength: 5, pattern: '^\\d{1,5}$' },
      description: `Most addresses listed, largest bytes first: 1 to transition.nat64TopN (default ${DEFAULT_NAT64_DESTINATIONS_LIMIT}).`,
      expect: 'must be an integer from 1 to transition.nat64TopN',
    },
  },
  '/api/v1/fireflies': {
    groupBy: {
      schema: { type: 'string', maxLength: 200, pattern: FIREFLY_GROUP_BY_PATTERN },
      description: `Comma-separated dimensions among ${FIREFLY_GROUP_BY_DIMENSIONS.join(', ')} (default community,activity; empty for one series; srcSite,dstSite for the site-pair table).`,
      expect: `must be a comma-separated list of ${FIREFLY_GROUP_BY_DIMENSIONS.join(', ')}`,
    },
  },
};

function parameterDef(url: string, name: ParameterName): ParameterDef {
  return ROUTE_PARAMETERS[url]?.[name] ?? PARAMETERS[name];
}

function querySchema(url: string, names: readonly ParameterName[]) {
  return {
    type: 'object',
    additionalProperties: false,
    properties: Object.fromEntries(
      names.map((n) => {
        const def = parameterDef(url, n);
        return [n, { ...def.schema, description: def.description }];
      }),
    ),
  } as const;
}

const NO_PARAMETERS = { type: 'object', additionalProperties: false, properties: {} } as const;

// ---------------------------------------------------------------------------------------
// Response schemas (documentation in the OpenAPI document, and fast serialisation)
// ---------------------------------------------------------------------------------------

const num = { type: 'number' } as const;
const str = { type: 'string' } as const;
const strOrNull = { type: ['string', 'null'] } as const;
const numOrNull = { type: ['number', 'null'] } as const;
/** The range every time-ranged answer echoes: ISO times and epoch milliseconds. */
const rangeProperties = { from: str, to: str, fromMs: num, toMs: num } as const;

const errorSchema = {
  type: 'object',
  properties: { error: str, parameter: str, message: str },
  required: ['error', 'message'],
} as const;

const totalsSchema = {
  type: 'object',
  properties: { bytes: num, packets: num, records: num, bitsPerSecond: num, packetsPerSecond: num },
  required: ['bytes', 'packets', 'records', 'bitsPerSecond', 'packetsPerSecond'],
} as const;

const fireflyTotalsProperties = {
  flowsStarted: num,
  flowsEnded: num,
  flowsExpired: num,
  flowsWithoutStart: num,
  bytes: num,
  durationSeconds: num,
  durationMeanSeconds: numOrNull,
  bitsPerSecond: num,
  throughputMeanBitsPerSecond: numOrNull,
  throughputMaxBitsPerSecond: numOrNull,
  rttMeanMs: numOrNull,
  rttMaxMs: numOrNull,
  deliveryRateMeanBitsPerSecond: numOrNull,
  deliveryRateMaxBitsPerSecond: numOrNull,
  retransmits: num,
  durationHistogram: { type: 'array', items: num, description: 'Ended flows per duration bin (bins.durationSeconds).' },
  throughputHistogram: { type: 'array', items: num, description: 'Ended flows with a throughput per bin (bins.throughputBitsPerSecond).' },
} as const;
const fireflyTotalsSchema = {
  type: 'object',
  properties: fireflyTotalsProperties,
  required: Object.keys(fireflyTotalsProperties),
} as const;

const fireflySchema = {
  type: 'object',
  properties: {
    ...rangeProperties,
    stepSeconds: num,
    bucketSeconds: num,
    groupBy: { type: 'array', items: str },
    bins: {
      type: 'object',
      description: 'Exclusive upper bounds of the histogram bins (null: the last, unbounded bin); bin i holds values from bound i-1.',
      properties: { durationSeconds: { type: 'array', items: numOrNull }, throughputBitsPerSecond: { type: 'array', items: numOrNull } },
    },
    filters: {
      type: 'object',
      properties: {
        community: { type: 'array', items: { type: 'object', properties: { id: num, name: strOrNull } } },
        activity: { type: 'array', items: { type: 'object', properties: { id: num, name: strOrNull } } },
        ipVersion: { type: 'array', items: num },
        srcSite: { type: 'array', items: str },
        dstSite: { type: 'array', items: str },
      },
    },
    series: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          group: {
            type: 'object',
            description:
              'One value per groupBy dimension; community adds communityName and activity adds activityName (registry names, else the ids as text).',
            additionalProperties: { type: ['string', 'number'] },
          },
          points: {
            type: 'array',
            items: {
              type: 'object',
              properties: { time: str, timeMs: num, ...fireflyTotalsProperties },
              required: ['time', 'timeMs', ...Object.keys(fireflyTotalsProperties)],
            },
          },
          totals: fireflyTotalsSchema,
        },
        required: ['group', 'points', 'totals'],
      },
    },
    totals: fireflyTotalsSchema,
    omittedGroups: num,
  },
  required: [
    'from',
    'to',
    'fromMs',
    'toMs',
    'stepSeconds',
    'bucketSeconds',
    'groupBy',
    'bins',
    'filters',
    'series',
    'totals',
    'omittedGroups',
  ],
} as const;

const trafficSchema = {
  type: 'object',
  properties: {
    ...rangeProperties,
    stepSeconds: num,
    bucketSeconds: num,
    groupBy: { type: 'array', items: str },
    filters: {
      type: 'object',
      properties: {
        community: { type: 'array', items: { type: 'object', properties: { id: num, name: strOrNull } } },
        activity: { type: 'array', items: { type: 'object', properties: { id: num, name: strOrNull } } },
        link: { type: 'array', items: { type: 'object', properties: { link: str, name: strOrNull } } },
        exporter: { type: 'array', items: str },
        class: { type: 'array', items: str },
        srcSite: { type: 'array', items: str },
        dstSite: { type: 'array', items: str },
        site: { type: 'array', items: str },
      },
    },
    series: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          group: {
            type: 'object',
            description:
              'One value per groupBy dimension; community and activity come with communityName / activityName ("unregistered" for folded or unknown pairs); link ("192.0.2.1:7", "[2001:db8::1]:7", "192.0.2.1:-" when the exporter gave no interface) with linkName, linkExporter, linkIfIndex.',
            additionalProperties: { type: ['string', 'number', 'null'] },
          },
          points: {
            type: 'array',
            description: 'One point per step that has data (steps without data are omitted).',
            items: {
              type: 'object',
              properties: {
                time: str,
                timeMs: num,
                bytes: num,
                packets: num,
                records: num,
                bitsPerSecond: num,
                packetsPerSecond: num,
                provisional: {
                  type: 'boolean',
                  description: 'Present (true) with provisional=true when the step holds a bucket not yet in the store: it may still grow.',
                },
              },
            },
          },
          totals: totalsSchema,
        },
      },
    },
    totals: totalsSchema,
    omittedGroups: num,
  },
} as const;

/**
 * The series of a time-series answer whose points and totals carry the same sums
 * (`properties`): per group, one point per step that has data (with time and timeMs), and the
 * group's totals.
 */
function seriesList<P extends Record<string, unknown>>(group: object, properties: P) {
  return {
    type: 'array',
    items: {
      type: 'object',
      properties: {
        group,
        points: {
          type: 'array',
          description: 'One point per step that has data.',
          items: { type: 'object', properties: { time: str, timeMs: num, ...properties } },
        },
        totals: { type: 'object', properties },
      },
    },
  } as const;
}

const transitionProperties = {
  ipv4Bytes: num,
  ipv6Bytes: { type: 'number', description: 'All IPv6, marked and unmarked, NAT64 included.' },
  nat64Bytes: { type: 'number', description: 'The part of ipv6Bytes to or from a NAT64 prefix (transition.nat64Prefixes).' },
  markedBytes: {
    type: 'number',
    description: 'The part of ipv6Bytes carrying a SciTags flow label (class scitags); ipv6Bytes - markedBytes is unmarked IPv6.',
  },
  ipv4Packets: num,
  ipv6Packets: num,
  nat64Packets: num,
  markedPackets: num,
  unknownBytes: { type: 'number', description: 'Traffic whose IP version no field told (never counted as either family).' },
  unknownPackets: num,
  ipv6Share: { type: ['number', 'null'], description: 'ipv6Bytes / (ipv4Bytes + ipv6Bytes); null without either.' },
  nat64Share: { type: ['number', 'null'], description: 'nat64Bytes / ipv6Bytes; null without IPv6.' },
} as const;

const transitionSchema = {
  ...trafficSchema,
  properties: {
    ...trafficSchema.properties,
    series: seriesList(trafficSchema.properties.series.items.properties.group, transitionProperties),
    totals: { type: 'object', properties: transitionProperties },
  },
} as const;

const nat64DestinationsSchema = {
  type: 'object',
  properties: {
    ...rangeProperties,
    bucketSeconds: num,
    approximate: { type: 'boolean', description: 'Always true: per-bucket lists come from a bounded Space-Saving sketch.' },
    topN: { type: 'number', description: 'transition.nat64TopN: addresses kept per bucket.' },
    buckets: { type: 'number', description: 'Buckets of the range with a stored list.' },
    destinations: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          address: str,
          bytes: { type: 'number', description: 'Sum of the per-bucket upper bounds (sampling-scaled).' },
          packets: num,
          errorBytes: { type: 'number', description: 'Sum of the per-bucket over-estimation bounds: bytes - errorBytes is a lower bound.' },
          buckets: { type: 'number', description: 'Buckets that list the address.' },
        },
      },
    },
    omitted: { type: 'number', description: 'Addresses listed in the range beyond limit.' },
  },
} as const;

const byOutcome = { type: 'object', properties: Object.fromEntries(MARKING_OUTCOMES.map((o) => [o, num])) } as const;
const markingSchema = {
  type: 'object',
  properties: {
    since: str,
    sinceMs: num,
    flows: num,
    evicted: num,
    outcomes: { type: 'array', items: str },
    rows: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          community: num,
          communityName: str,
          activity: num,
          activityName: str,
          srcSite: str,
          dstSite: str,
          records: byOutcome,
          bytes: byOutcome,
          agreeShare: { type: ['number', 'null'] },
          carried: { type: 'array', items: { type: 'object', properties: { community: num, activity: num, records: num } } },
        },
      },
    },
    omittedRows: num,
  },
} as const;

const correlationProperties = {
  fireflyBytes: num,
  fireflyFlowsEnded: num,
  flowLabelBytes: num,
  flowLabelPackets: num,
  visibleShare: { type: ['number', 'null'] },
} as const;

const correlationSchema = {
  type: 'object',
  properties: {
    ...rangeProperties,
    stepSeconds: num,
    bucketSeconds: num,
    groupBy: { type: 'array', items: str },
    series: seriesList({ type: 'object', additionalProperties: { type: ['string', 'number', 'null'] } }, correlationProperties),
    totals: { type: 'object', properties: correlationProperties },
    omittedGroups: num,
  },
} as const;

const experimentsSchema = {
  type: 'object',
  properties: {
    registry: {
      type: 'object',
      properties: {
        source: { type: 'string', enum: ['snapshot', 'cache', 'download'] },
        modified: strOrNull,
        modifiedAgeSeconds: numOrNull,
        loadedAt: str,
        loadedAgeSeconds: num,
        lastAttempt: strOrNull,
        lastError: strOrNull,
        refreshes: num,
        failures: num,
      },
    },
    communities: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: num,
          name: str,
          activities: { type: 'array', items: { type: 'object', properties: { id: num, name: str } } },
        },
      },
    },
  },
} as const;

const sideSchema = {
  type: 'object',
  properties: { bytes: num, packets: num, records: num },
  required: ['bytes', 'packets', 'records'],
} as const;

const linksSchema = {
  type: 'object',
  properties: {
    ...rangeProperties,
    links: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: {
            ...strOrNull,
            description: 'Configured name, else the interface name the exporter sent (IE 82); null when only the store knows the link.',
          },
          link: {
            ...str,
            description:
              '"exporter:ifIndex" ("[2001:db8::1]:7"); "exporter:-" for traffic with no interface reported (absent, ifIndex 0, sFlow 0x3FFFFFFF / discard / multiple outputs).',
          },
          exporter: str,
          ifIndex: numOrNull,
          capacityBps: numOrNull,
          source: {
            type: 'string',
            enum: ['config', 'learned', 'traffic'],
            description: 'config, learned (IE 82), or traffic (seen in the store only).',
          },
          traffic: {
            type: 'object',
            description:
              'Stored traffic in [from, to) that entered the router on this link (in) and left on it (out); bytes and packets scaled by the sampling rate.',
            properties: { in: sideSchema, out: sideSchema },
            required: ['in', 'out'],
          },
        },
        required: ['name', 'link', 'exporter', 'ifIndex', 'capacityBps', 'source', 'traffic'],
      },
    },
    omittedLinks: { ...num, description: 'Links seen only in the store left out by limit (the smallest by bytes).' },
  },
} as const;

const exportersSchema = {
  type: 'object',
  properties: {
    exporters: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          address: str,
          protocols: { type: 'array', items: str },
          sessions: { type: 'array', items: str },
          lastSeen: str,
          lastSeenMs: num,
          lastSeenAgeSeconds: num,
          datagrams: num,
          records: num,
          errorsByReason: { type: 'object', additionalProperties: num },
          decoderCrashes: { type: 'object', additionalProperties: num },
          sequenceGaps: num,
          lostRecords: num,
          samplingRates: {
            type: 'array',
            items: { type: 'object', properties: { domain: num, rate: num, source: str } },
          },
          liveTemplates: num,
          rateLimited: { type: 'object', properties: { datagrams: num, sessions: num } },
          decoderState: { type: 'object', properties: { bytes: num, evictions: num } },
          padding: { type: 'object', properties: { datagrams: num, octets: num } },
          sflowSources: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                subAgent: num,
                sourceIdType: num,
                sourceIdIndex: num,
                samplingRate: num,
                effectiveRate: { type: ['number', 'null'] },
                drops: num,
                lostSamples: num,
              },
            },
          },
        },
      },
    },
  },
} as const;

const healthSchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ok', 'degraded', 'down'] },
    version: str,
    time: str,
    reasons: {
      type: 'array',
      items: {
        type: 'object',
        properties: { reason: str, metric: str, detail: str },
        required: ['reason', 'metric', 'detail'],
      },
    },
    checks: {
      type: 'object',
      additionalProperties: { type: 'object', properties: { status: str, message: str }, required: ['status'] },
    },
  },
} as const;

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

interface AjvError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

function validationAnswer(v: AjvError, allowed: readonly string[], url: string): { parameter: string; message: string } {
  if (v.keyword === 'additionalProperties') {
    const name = String(v.params['additionalProperty']);
    return {
      parameter: name,
      message: `unknown parameter${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ' (this endpoint takes none)'}`,
    };
  }
  if (v.keyword === 'required') return { parameter: String(v.params['missingProperty']), message: 'is required' };
  const parameter = v.instancePath.replace(/^\//, '').split('/')[0] ?? '';
  if (v.keyword === 'type') return { parameter, message: 'must be given once (use a comma-separated list for several values)' };
  if (v.keyword === 'pattern' && parameter in PARAMETERS)
    return { parameter, message: parameterDef(url, parameter as ParameterName).expect };
  if (v.keyword === 'maxLength') return { parameter, message: `must be at most ${String(v.params['limit'])} characters` };
  if (v.keyword === 'minLength') return { parameter, message: 'must not be empty' };
  return { parameter, message: v.message ?? 'is invalid' };
}

// ---------------------------------------------------------------------------------------
// Exporters: the answer's rows, sorted, from one snapshot
// ---------------------------------------------------------------------------------------

/**
 * Answers from a store query: a bad parameter is rethrown (the error handler makes it a 400),
 * NotAvailable is a 503 "not available" (switched off, or not kept by this store), anything
 * else means the store could not answer, a 503 naming its message (after `onFailure`).
 */
async function fromStore<T>(reply: FastifyReply, query: () => Promise<T>, onFailure?: (err: unknown) => void): Promise<T | FastifyReply> {
  try {
    return await query();
  } catch (err) {
    if (err instanceof BadParameter) throw err;
    if (err instanceof NotAvailable) return reply.code(503).send({ error: 'not available', message: err.message });
    onFailure?.(err);
    return reply.code(503).send({ error: 'store unavailable', message: (err as Error).message });
  }
}

type ExporterRow = Omit<ExporterInfo, 'sflowSources'> & { lastSeen: string; sflowSources?: ExporterInfo['sflowSources'] };

function exporterRows(source: readonly ExporterInfo[]): ExporterRow[] {
  return [...source]
    .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0))
    .map((e) => ({
      address: e.address,
      protocols: e.protocols,
      sessions: e.sessions,
      lastSeen: new Date(e.lastSeenMs).toISOString(),
      lastSeenMs: e.lastSeenMs,
      datagrams: e.datagrams,
      records: e.records,
      errorsByReason: e.errorsByReason,
      decoderCrashes: e.decoderCrashes,
      sequenceGaps: e.sequenceGaps,
      lostRecords: e.lostRecords,
      samplingRates: e.samplingRates,
      liveTemplates: e.liveTemplates,
      rateLimited: e.rateLimited,
      decoderState: e.decoderState,
      padding: e.padding,
      ...(e.sflowSources ? { sflowSources: e.sflowSources } : {}),
    }));
}

// ---------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------

/**
 * The REST API (no socket: the caller listens, tests use inject()):
 *  GET /api/v1/traffic, /api/v1/experiments, /api/v1/links, /api/v1/exporters,
 *  /api/v1/openapi.json, /health, /metrics; the built-in page at / and the API documentation at /docs/.
 * Every query parameter is checked by a JSON schema (unknown parameters rejected); any bad
 * input is answered 400 with {"error":"bad request","parameter":NAME,"message":WHY}.
 */
export function buildApi(deps: ApiDeps): FastifyInstance {
  const limits: ApiLimits = { ...DEFAULT_API_LIMITS, ...deps.limits };
  const pinoLogger = deps.log?.pino;
  const app = Fastify({
    // The same pino instance as the rest of the collector (a child with component 'api'), so
    // fastify's own lines (errors, listening) are JSON lines of the same stream.
    ...(pinoLogger ? { loggerInstance: pinoLogger as FastifyBaseLogger } : { logger: false }),
    // fastify's request logging writes two lines per request ('incoming request', 'request
    // completed'); the access log below writes one, and only when asked for.
    logController: new LogController({ disableRequestLogging: true }),
    // Reject unknown parameters instead of silently dropping them (fastify's default).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
    // Our 400 handler answers for bad query strings; keep route lookup case-sensitive.
    routerOptions: { ignoreTrailingSlash: true },
    // Every route is GET (fastify reads no GET body); anything bigger is refused before parsing.
    bodyLimit: API_BODY_LIMIT_BYTES,
  });
  const security: ApiSecurity = { ...DEFAULT_API_SECURITY, ...deps.security };
  const pageDir = deps.pageDir ?? defaultPageDir();
  const pageFiles = pageFilePaths(pageDir);
  registerSecurity(app, security, (path) => isPublicPath(path, pageFiles));

  // Methods per path, for 405 answers to other methods on a known path.
  const methodsByPath = new Map<string, Set<string>>();
  app.addHook('onRoute', (r) => {
    if (r.url.includes('*')) return;
    const set = methodsByPath.get(r.url) ?? new Set<string>();
    for (const m of Array.isArray(r.method) ? r.method : [r.method]) set.add(m);
    methodsByPath.set(r.url, set);
  });

  const allowedByRoute = new Map<string, readonly string[]>();
  let exportersMemo: { source: readonly ExporterInfo[]; rows: ExporterRow[] } | undefined;

  const access = deps.accessLog;
  if (access) {
    app.addHook('onResponse', async (req, reply) => {
      access.info(`${req.method} ${req.url} ${reply.statusCode}`, {
        method: req.method,
        url: req.url,
        status: reply.statusCode,
        responseTimeMs: Math.round(reply.elapsedTime * 100) / 100,
        remoteAddress: req.ip,
        reqId: req.id,
      });
    });
  }

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof BadParameter) {
      return reply.code(400).send({ error: 'bad request', parameter: err.parameter, message: err.message });
    }
    const first = err.validation?.[0] as AjvError | undefined;
    if (first) {
      const allowed = allowedByRoute.get(req.routeOptions.url ?? '') ?? [];
      return reply.code(400).send({ error: 'bad request', ...validationAnswer(first, allowed, req.routeOptions.url ?? '') });
    }
    if (err.statusCode === 429) return reply.code(429).send({ error: 'too many requests', message: err.message });
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.code(err.statusCode).send({ error: 'bad request', message: err.message });
    }
    req.log.error({ err }, 'API request failed');
    return reply.code(500).send({ error: 'internal error', message: err.message });
  });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '';
    const methods = methodsByPath.get(path) ?? methodsByPath.get(path.replace(/\/+$/, ''));
    if (methods) {
      const allow = [...methods].sort().join(', ');
      void reply
        .code(405)
        .header('allow', allow)
        .send({ error: 'method not allowed', message: `${req.method} is not allowed on ${path} (allowed: ${allow})` });
      return;
    }
    void reply.code(404).send({ error: 'not found', message: `no route ${req.method} ${path}` });
  });

  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'scitags-collector',
        version: VERSION,
        description:
          'Per-experiment (SciTags) traffic per link, from IPFIX / NetFlow / sFlow. Errors: 400 {"error":"bad request","parameter","message"}.',
      },
      tags: [
        { name: 'traffic', description: 'Aggregated traffic' },
        { name: 'inventory', description: 'Registry, links, exporters' },
        { name: 'operations', description: 'Health and metrics' },
      ],
    },
  });

  registerPage(app, pageDir, pageFiles);

  void app.register(async (api) => {
    const route = (url: string, params: readonly ParameterName[]) => {
      allowedByRoute.set(url, params);
      return params.length ? querySchema(url, params) : NO_PARAMETERS;
    };

    const trafficParams = [
      'from',
      'to',
      'step',
      'groupBy',
      'community',
      'activity',
      'link',
      'exporter',
      'class',
      'srcSite',
      'dstSite',
      'site',
      'provisional',
    ] as const;
    api.get<{ Querystring: TrafficParams }>(
      '/api/v1/traffic',
      {
        schema: {
          tags: ['traffic'],
          summary: 'Traffic time series and totals per group',
          description:
            'Rows whose bucket starts in [from, to), summed per step (points at multiples of the step counted from the Unix epoch; steps without data omitted) and per group. bytes and packets are scaled by the sampling rate; records are not. Rates are per step (bitsPerSecond = bytes * 8 / step) and, in totals, averaged over the range. Grouping by link or direction counts a row once for its input link (direction in) and once for its output link (direction out), but never twice in one group: a row whose two sides are the same link (both unknown, or in and out on one interface) counts once there unless direction is grouped too. The top-level totals count each row once.',
          querystring: route('/api/v1/traffic', trafficParams),
          response: { 200: trafficSchema, 400: errorSchema, 503: errorSchema },
        },
      },
      (req, reply) => fromStore(reply, () => trafficQuery(deps, limits, req.query)),
    );

    api.get<{ Querystring: TrafficParams }>(
      '/api/v1/transition',
      {
        schema: {
          tags: ['traffic'],
          summary: 'The IPv6 transition view: IPv4, IPv6 and NAT64 traffic per group',
          description:
            'The parameters and series of /api/v1/traffic (default groupBy link), each group split into IPv4, IPv6 (marked and unmarked) and the NAT64 part of the IPv6 (to or from a configured NAT64 prefix, default 64:ff9b::/96), with ipv6Share and nat64Share. bytes and packets are scaled by the sampling rate. Records without addresses have no NAT64 flag; records that told no IP version count as unknown. Grouping by site (srcSite, dstSite, site) reads the site-pair sums, which need a site map (sites.prefixes or sites.cric.source). class and nat64 are the split itself and cannot be grouped here.',
          querystring: route('/api/v1/transition', trafficParams),
          response: { 200: transitionSchema, 400: errorSchema, 503: errorSchema },
        },
      },
      (req, reply) => fromStore(reply, () => transitionQuery(deps, limits, req.query)),
    );

    api.get<{ Querystring: Nat64DestinationsParams }>(
      '/api/v1/transition/nat64-destinations',
      {
        schema: {
          tags: ['traffic'],
          summary: 'IPv4 destinations behind NAT64: the services that still need dual-stacking (approximate: true)',
          description:
            "The IPv4 addresses embedded in the NAT64 side of NAT64 traffic (the destination when it lies in a NAT64 prefix, else the source), summed over the buckets that start in [from, to), largest bytes first. The answer is approximate (approximate: true): each bucket keeps a Space-Saving top N (transition.nat64TopN) by sampling-scaled bytes. Per bucket, bytes is an upper bound and bytes - errorBytes a lower bound of the true bytes; errorBytes here is the sum of those bounds over the buckets that list the address (buckets). A bucket where the address fell out of its top N does not count it (less than that bucket's smallest listed bytes). Exact while a bucket sees at most N addresses. packets counts what the address added since it took its counter (a lower bound). 503 when transition.nat64TopN is 0.",
          querystring: route('/api/v1/transition/nat64-destinations', ['from', 'to', 'limit']),
          response: { 200: nat64DestinationsSchema, 400: errorSchema, 503: errorSchema },
        },
      },
      (req, reply) => fromStore(reply, () => nat64DestinationsQuery(deps, req.query)),
    );

    api.get<{ Querystring: MarkingParams }>(
      '/api/v1/fireflies/marking',
      {
        schema: {
          tags: ['traffic'],
          summary: 'The marking check: how the flow records of firefly flows (same 5-tuple) were marked, per experiment and site pair',
          description:
            'Since the collector started: for every flow record whose 5-tuple (either direction) is a firefly flow held by the collector (live, or ended within the late window), the outcome per experiment, activity and site pair the host declared: agree (the flow label carried the declared pair), mismatch (another pair; carried lists which), unmarked (label 0), notExported (the exporter sends no flow label), ipv4 (no label exists). records and bytes (scaled by sampling) per outcome; agreeShare = agree / (agree + mismatch + unmarked). Finds hosts whose marking is missing or wrong.',
          querystring: route('/api/v1/fireflies/marking', ['community', 'srcSite', 'dstSite']),
          response: { 200: markingSchema, 400: errorSchema, 503: errorSchema },
        },
      },
      (req, reply) => fromStore(reply, async () => markingQuery(deps, limits, req.query)),
    );

    const correlationParams = ['from', 'to', 'step', 'groupBy', 'community', 'activity', 'srcSite', 'dstSite', 'exporter'] as const;
    api.get<{ Querystring: CorrelationParams }>(
      '/api/v1/correlation',
      {
        schema: {
          tags: ['traffic'],
          summary:
            'Fireflies beside flow-label traffic: what transfer hosts reported and what this network saw marked, per experiment and site pair',
          description:
            'Per group (community, activity, srcSite, dstSite) and step: fireflyBytes and fireflyFlowsEnded (flows whose end firefly arrived, bytes in both directions as the hosts reported them) from the firefly rows, flowLabelBytes and flowLabelPackets (class scitags in the site-pair sums, scaled by sampling) from the flow records, and visibleShare = flowLabelBytes / fireflyBytes (null without firefly bytes). Sites come from the same site map for both. A flow crossing several exporting routers counts at each: use exporter to compare one vantage point. Unregistered label pairs are folded in the flow-label view, so they appear under community null.',
          querystring: route('/api/v1/correlation', correlationParams),
          response: { 200: correlationSchema, 400: errorSchema, 503: errorSchema },
        },
      },
      (req, reply) => fromStore(reply, () => correlationQuery(deps, limits, req.query)),
    );

    const fireflyParams = ['from', 'to', 'step', 'groupBy', 'community', 'activity', 'ipVersion', 'srcSite', 'dstSite'] as const;
    api.get<{ Querystring: FireflyParams }>(
      '/api/v1/fireflies',
      {
        schema: {
          tags: ['traffic'],
          summary: 'SciTags fireflies: flows started, ended and expired, bytes, durations, throughput and rtt per group',
          description:
            "Firefly rows (per bucket of the collector's receive time, community = experiment-id, activity, IP version, source and destination site) whose bucket starts in [from, to), summed per step (points at multiples of the step from the Unix epoch; steps without data omitted) and per group. bytes, durationSeconds, throughput, rtt and retransmits are those of the flows that ended in the step; means are over the ended flows that carried the value (null when none did), maxima the largest. communityName / activityName are the registry's names, else the ids as text.",
          querystring: route('/api/v1/fireflies', fireflyParams),
          response: { 200: fireflySchema, 400: errorSchema, 503: errorSchema },
        },
      },
      (req, reply) =>
        fromStore(
          reply,
          () => fireflyQuery(deps, limits, req.query),
          (err) => {
            if (!(err instanceof FireflyStoreUnavailable)) req.log.warn({ err }, 'firefly query failed');
          },
        ),
    );

    api.get(
      '/api/v1/experiments',
      {
        schema: {
          tags: ['inventory'],
          summary: 'SciTags registry in use: experiments (communities) and their activities',
          querystring: route('/api/v1/experiments', []),
          response: { 200: experimentsSchema, 400: errorSchema },
        },
      },
      async () => {
        const now = deps.now();
        const reg = deps.registry.registry;
        const st = deps.registry.status();
        const modifiedMs = st.modified === undefined ? NaN : Date.parse(st.modified);
        return {
          registry: {
            source: st.source,
            modified: st.modified ?? null,
            modifiedAgeSeconds: Number.isNaN(modifiedMs) ? null : Math.floor((now - modifiedMs) / 1000),
            loadedAt: new Date(st.loadedAtMs).toISOString(),
            loadedAgeSeconds: Math.floor((now - st.loadedAtMs) / 1000),
            lastAttempt: st.lastAttemptMs === undefined ? null : new Date(st.lastAttemptMs).toISOString(),
            lastError: st.lastError ?? null,
            refreshes: st.refreshes,
            failures: st.failures,
          },
          communities: [...reg.document.experiments]
            .sort((a, b) => a.expId - b.expId)
            .map((e) => ({
              id: e.expId,
              name: e.expName,
              activities: [...e.activities]
                .sort((a, b) => a.activityId - b.activityId)
                .map((a) => ({ id: a.activityId, name: a.activityName })),
            })),
        };
      },
    );

    api.get<{ Querystring: LinksParams }>(
      '/api/v1/links',
      {
        schema: {
          tags: ['inventory'],
          summary:
            'Links: configured names and capacities, interface names learnt from IPFIX options, and every other link carrying traffic in the range',
          description:
            'Configured links first, then names learnt from the exporters (IPFIX interfaceName, IE 82) that are not configured, then the links seen only in the store for [from, to) (default the last hour), largest first, at most limit of them. Each entry has its traffic in the range, in and out; a row whose two sides are one link counts once in each direction.',
          querystring: route('/api/v1/links', ['from', 'to', 'limit']),
          response: { 200: linksSchema, 400: errorSchema, 503: errorSchema },
        },
      },
      (req, reply) => fromStore(reply, () => linksQuery(deps, req.query)),
    );

    api.get(
      '/api/v1/exporters',
      {
        schema: {
          tags: ['inventory'],
          summary: 'Exporters seen: protocols, last seen, counters, errors by reason, sequence gaps, sampling rates, templates',
          querystring: route('/api/v1/exporters', []),
          response: { 200: exportersSchema, 400: errorSchema },
        },
      },
      async () => {
        // Built once per published snapshot (a new array), not per request: a request costs one
        // pass adding the ages, whatever the decoders hold.
        const source = await deps.exporters();
        if (exportersMemo?.source !== source) exportersMemo = { source, rows: exporterRows(source) };
        const now = deps.now();
        return {
          exporters: exportersMemo.rows.map((e) => ({ ...e, lastSeenAgeSeconds: Math.max(0, Math.floor((now - e.lastSeenMs) / 1000)) })),
        };
      },
    );

    api.get('/api/v1/openapi.json', { schema: { hide: true, querystring: route('/api/v1/openapi.json', []) } }, async () => app.swagger());

    api.get(
      '/health',
      {
        schema: {
          tags: ['operations'],
          summary: 'Health: 200 when ok or degraded (with the reasons), 503 when down, or degraded in strict mode',
          querystring: route('/health', ['strict']),
          response: { 200: healthSchema, 503: healthSchema, 400: errorSchema },
        },
      },
      async (req, reply) => {
        const h = deps.health();
        const asked = (req.query as { strict?: string }).strict;
        const strict = asked === undefined ? h.strict === true : asked === '1' || asked === 'true';
        const failing = h.status === 'down' || (strict && h.status === 'degraded');
        return reply.code(failing ? 503 : 200).send({
          status: h.status,
          version: VERSION,
          time: new Date(deps.now()).toISOString(),
          reasons: h.reasons ?? [],
          checks: h.checks,
        });
      },
    );

    api.get(
      '/metrics',
      {
        schema: {
          tags: ['operations'],
          summary: 'Prometheus metrics (text exposition format)',
          querystring: route('/metrics', []),
          produces: ['text/plain'],
        },
      },
      async (_req, reply) => {
        const text = await deps.metricsRegistry.metrics();
        return reply.type(deps.metricsRegistry.contentType).send(text);
      },
    );
  });

  return app;
}
