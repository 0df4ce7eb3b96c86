/**
 * The WLCG-CRIC `rcsite` document (https://wlcg-cric.cern.ch/api/core/rcsite/query/?json), as
 * scitags/firefly-collector's CRIC metadata collector reads it: a JSON object keyed by site,
 * each site an object with `name` and `netroutes`, an object of routes, each route carrying
 * `networks`: an object of prefix lists (keys `ipv4`, `ipv6`):
 *
 *   {"CERN-PROD": {"name": "CERN-PROD", "netroutes": {"CERN-PROD-LHCOPN": {"networks":
 *     {"ipv4": ["128.142.0.0/16"], "ipv6": ["2001:1458::/31"]}}}}}
 *
 * The document comes from the network and is not trusted: anything of the wrong type is
 * skipped and counted (a whole document of the wrong shape is refused), names are bounded,
 * and the number of prefixes kept is capped. Only names and prefixes are read.
 */

/** The longest site name kept; longer names are refused (they become tags). */
export const MAX_SITE_NAME_LENGTH = 100;

export interface CricSite {
  name: string;
  prefixes: string[];
}

export interface CricDocument {
  /** Sites in name order (the order prefixes are inserted, so duplicates resolve the same way every time). */
  sites: CricSite[];
  /** Entries skipped because of their type or content (a site, route or prefix list not shaped as above, an empty or overlong name). */
  skipped: number;
  /** Prefixes left out because `maxPrefixes` were already read. */
  overCap: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Names the site lookup answers itself (site-map.ts): no site may take them. */
export const RESERVED_SITE_NAMES: readonly string[] = ['unknown', 'other'];

/**
 * A site name usable as a tag: printable ASCII without spaces, no comma (API filters are
 * comma-separated), bounded, and not one of the answers the lookup gives itself.
 */
export function validSiteName(name: unknown): name is string {
  return (
    typeof name === 'string' &&
    name.length > 0 &&
    name.length <= MAX_SITE_NAME_LENGTH &&
    /^[\x21-\x7e]+$/.test(name) &&
    !name.includes(',') &&
    !RESERVED_SITE_NAMES.includes(name)
  );
}

/** Reads a parsed CRIC document; throws only when the top level is not an object of sites. */
export function readCricDocument(doc: unknown, maxPrefixes: number): CricDocument {
  if (!isObject(doc)) throw new Error('CRIC rcsite document must be a JSON object keyed by site name');
  let skipped = 0;
  let overCap = 0;
  let kept = 0;
  const sites: CricSite[] = [];
  for (const key of Object.keys(doc).sort()) {
    const site = doc[key];
    // The site's own `name` is the rcsite name; the key is the same in CRIC's answers.
    const name = isObject(site) && site['name'] !== undefined ? site['name'] : key;
    if (!isObject(site) || !validSiteName(name)) {
      skipped++;
      continue;
    }
    const routes = site['netroutes'];
    if (routes === undefined) continue; // a site without network routes: nothing to match
    if (!isObject(routes)) {
      skipped++;
      continue;
    }
    const prefixes: string[] = [];
    for (const routeName of Object.keys(routes).sort()) {
      const networks = isObject(routes[routeName]) ? (routes[routeName] as Record<string, unknown>)['networks'] : undefined;
      if (!isObject(networks)) {
        skipped++;
        continue;
      }
      for (const list of Object.values(networks)) {
        if (!Array.isArray(list)) {
          skipped++;
          continue;
        }
        for (const p of list) {
          if (typeof p !== 'string' || p.length > 64) {
            skipped++;
            continue;
          }
          if (kept >= maxPrefixes) {
            overCap++;
            continue;
          }
          prefixes.push(p);
          kept++;
        }
      }
    }
    sites.push({ name, prefixes });
  }
  return { sites, skipped, overCap };
}

/** JSON text -> document; throws with a reason when the text is not JSON or not a CRIC object. */
export function parseCricText(text: string, maxPrefixes: number): CricDocument {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`CRIC rcsite document is not JSON: ${(err as Error).message}`);
  }
  return readCricDocument(doc, maxPrefixes);
}
