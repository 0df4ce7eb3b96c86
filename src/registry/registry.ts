import type { RegistryDocument } from './schema.js';

/** Where the registry in use came from: the shipped snapshot, the cache file, or a download. */
export type RegistrySource = 'snapshot' | 'cache' | 'download';

export interface PairNames {
  communityName: string | undefined;
  activityName: string | undefined;
  /** True only when the registry knows both the experiment and this activity of it. */
  registered: boolean;
}

/**
 * An immutable, indexed view of one registry document. Lookups are array indexing (the
 * hot path calls this per record): community (0..511) x activity (0..63).
 */
export class Registry {
  readonly source: RegistrySource;
  readonly loadedAtMs: number;
  readonly modified: string | undefined;
  readonly document: RegistryDocument;
  private readonly communityNames: (string | undefined)[] = new Array(512);
  private readonly activityNames: (string | undefined)[] = new Array(512 * 64);

  constructor(doc: RegistryDocument, source: RegistrySource, loadedAtMs: number) {
    this.document = doc;
    this.source = source;
    this.loadedAtMs = loadedAtMs;
    this.modified = doc.modified;
    for (const exp of doc.experiments) {
      this.communityNames[exp.expId] = exp.expName;
      for (const act of exp.activities) this.activityNames[exp.expId * 64 + act.activityId] = act.activityName;
    }
  }

  communityName(community: number): string | undefined {
    return this.communityNames[community];
  }

  activityName(community: number, activity: number): string | undefined {
    return this.activityNames[community * 64 + activity];
  }

  isRegistered(community: number, activity: number): boolean {
    return this.activityNames[community * 64 + activity] !== undefined;
  }

  names(community: number, activity: number): PairNames {
    const activityName = this.activityNames[community * 64 + activity];
    return { communityName: this.communityNames[community], activityName, registered: activityName !== undefined };
  }

  get experimentCount(): number {
    return this.document.experiments.length;
  }
}
