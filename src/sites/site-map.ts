import { PrefixTable } from './prefix-table.js';
import type { CricDocument } from './cric.js';

/** The site of an address no prefix holds. */
export const UNKNOWN_SITE = 'unknown';
/** The site of addresses whose site name came after `maxSites` distinct names were given out. */
export const OTHER_SITE = 'other';

export interface SiteMapStats {
  configuredPrefixes: number;
  cricPrefixes: number;
  cricSites: number;
  /** Prefixes not usable (not a CIDR), in the configuration and in the CRIC document. */
  invalidPrefixes: number;
  /** A prefix claimed by a second site (the first, in name order, keeps it). */
  duplicatePrefixes: number;
  /** Prefixes refused because the table held maxPrefixes. */
  prefixesOverCap: number;
  /** Distinct site names given out as tags so far (at most maxSites). */
  names: number;
  /** Lookups whose site was folded into 'other' because maxSites names were given out. */
  folded: number;
}

/**
 * Address -> site name. Configured prefixes (`sites.prefixes`) are looked up first and win
 * over the CRIC document whatever the lengths: the operator's word is final, even where
 * CRIC has a longer prefix. Within each source the longest prefix wins.
 *
 * Site names become tags (store series, API groups), so their number is bounded: the first
 * `maxSites` distinct names returned are kept, later ones are answered 'other' and counted.
 * The names given out survive a CRIC refresh (the series already exist), so a refresh never
 * moves the cap.
 */
export class SiteMap {
  private configured: PrefixTable<string>;
  private cric: PrefixTable<string>;
  private readonly given = new Set<string>();
  private cricSites = 0;
  private invalid = 0;
  private duplicates = 0;
  private overCap = 0;
  private configuredInvalid = 0;
  private configuredDuplicates = 0;
  private configuredOverCap = 0;
  private folded = 0;

  constructor(
    configured: Readonly<Record<string, readonly string[]>>,
    private readonly limits: { maxPrefixes: number; maxSites: number },
  ) {
    this.configured = new PrefixTable(limits.maxPrefixes);
    for (const name of Object.keys(configured).sort()) {
      for (const p of configured[name] ?? []) {
        const r = this.configured.insert(p, name);
        if (r === 'invalid') this.configuredInvalid++;
        else if (r === 'duplicate') this.configuredDuplicates++;
        else if (r === 'full') this.configuredOverCap++;
      }
    }
    this.cric = new PrefixTable(0);
    this.resetCricCounts();
  }

  private resetCricCounts(): void {
    this.invalid = this.configuredInvalid;
    this.duplicates = this.configuredDuplicates;
    this.overCap = this.configuredOverCap;
  }

  /** Replaces the CRIC prefixes (a refresh); configured ones and the names given out stay. */
  setCric(doc: CricDocument): void {
    const table = new PrefixTable<string>(Math.max(0, this.limits.maxPrefixes - this.configured.size));
    this.resetCricCounts();
    this.overCap += doc.overCap;
    for (const site of doc.sites) {
      for (const p of site.prefixes) {
        const r = table.insert(p, site.name);
        if (r === 'invalid') this.invalid++;
        else if (r === 'duplicate') this.duplicates++;
        else if (r === 'full') this.overCap++;
      }
    }
    this.cric = table;
    this.cricSites = doc.sites.length;
  }

  /** The site of `address` (IPv4 or IPv6 text): a name, 'unknown' or 'other'. */
  siteOf(address: string): string {
    const name = this.configured.lookup(address) ?? this.cric.lookup(address);
    if (name === undefined) return UNKNOWN_SITE;
    if (this.given.has(name)) return name;
    if (this.given.size >= this.limits.maxSites) {
      this.folded++;
      return OTHER_SITE;
    }
    this.given.add(name);
    return name;
  }

  stats(): SiteMapStats {
    return {
      configuredPrefixes: this.configured.size,
      cricPrefixes: this.cric.size,
      cricSites: this.cricSites,
      invalidPrefixes: this.invalid,
      duplicatePrefixes: this.duplicates,
      prefixesOverCap: this.overCap,
      names: this.given.size,
      folded: this.folded,
    };
  }
}
