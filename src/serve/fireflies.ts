/**
 * Where the decode stage's accepted fireflies go in the daemon: counted by state (the
 * `scitags_fireflies_accepted_total` metric, so the daemon works end to end on its own),
 * forwarded unchanged to the configured upstream collectors, and handed to the firefly sink
 * (the flow table and site attribution of src/fireflies/, once set by the Collector).
 * Refused fireflies never get here: the decode stage counted them by reason instead.
 */
import type { FireflyForwarder } from '../../collectors/firefly-forward.js';
import type { Firefly, FireflyState } from '../../decoders/firefly/types.js';
import type { FireflyTarget } from '../pipeline/decoder.js';

/** What consumes parsed fireflies (the flow table); `receivedMs` is the collector's clock. */
export interface FireflySink {
  accept(f: Firefly, receivedMs: number, exporterAddr: string): void;
}

export class FireflyIntake implements FireflyTarget {
  readonly accepted: Record<FireflyState, number> = { start: 0, ongoing: 0, end: 0 };
  /** Set by the Collector; undefined counts and forwards only. */
  sink: FireflySink | undefined;

  constructor(private readonly forwarder: FireflyForwarder | undefined) {}

  accept(f: Firefly, receivedMs: number, exporterAddr: string, payload: Uint8Array): void {
    this.accepted[f.state]++;
    if (this.forwarder?.enabled) this.forwarder.forward(payload, receivedMs);
    this.sink?.accept(f, receivedMs, exporterAddr);
  }
}
