import type { LearnedInterface } from '../api/types.js';
import type { LinkConfig } from '../config/schema.js';

/**
 * The one directory of link names: configured links (config `links`) and interface names
 * learnt from exporters (IPFIX interfaceName, IE 82, via the decode stage's snapshot). The
 * API, the InfluxDB link tags and the dashboards' variables all read it.
 */
export class LinkDirectory {
  private learntList: LearnedInterface[] = [];
  private learntByKey: ReadonlyMap<string, string> = new Map();

  constructor(readonly configured: readonly LinkConfig[]) {}

  /** Replaces the learnt names (called with each new decode snapshot). */
  setLearnt(list: readonly LearnedInterface[]): void {
    this.learntList = [...list];
    this.learntByKey = new Map(list.map((l) => [`${l.exporter}|${l.ifIndex}`, l.name]));
  }

  learnt(): LearnedInterface[] {
    return this.learntList;
  }

  /** Learnt names keyed "exporter|ifIndex" (the stores' lookup). */
  learntNames(): ReadonlyMap<string, string> {
    return this.learntByKey;
  }
}
