/** sFlow v5 decoding: the one entry point, its state and its result types. */
export { decodeSflow } from './datagram.js';
export {
  createSflowState,
  effectiveSamplingRate,
  DEFAULT_SFLOW_STATE_LIMITS,
  type SflowState,
  type SflowStateLimits,
  type SflowAgentEntry,
  type SflowSourceEntry,
  type SflowSourceKind,
  type SequenceTrack,
} from './state.js';
export {
  DEFAULT_MAX_RECORDS_PER_SAMPLE,
  DEFAULT_MAX_SAMPLES_PER_DATAGRAM,
  type SflowOptions,
  type SflowDecodeResult,
  type SflowDatagramStats,
  type SflowInterfaceCounters,
  type SflowSkipped,
} from './types.js';
