/**
 * A colour-blind-safe palette (Okabe & Ito's eight, then Paul Tol's "muted") in which each
 * experiment keeps its colour in every view: the colour follows the community id, never the
 * position in a list. Unmarked traffic is grey.
 */
const OKABE_ITO = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000'];
const TOL_MUTED = ['#332288', '#88CCEE', '#44AA99', '#117733', '#999933', '#DDCC77', '#CC6677', '#882255', '#AA4499'];
export const PALETTE: readonly string[] = [...OKABE_ITO, ...TOL_MUTED];

/** The big experiments first, so they get the most distinct colours. */
const FIXED: Record<number, number> = { 2: 0, 3: 1, 4: 2, 5: 3, 6: 4, 8: 5, 7: 8, 9: 9, 1: 10 };

export const CLASS_COLOURS: Record<string, string> = {
  ipv6_unmarked: '#8C8C8C',
  ipv4: '#C8C8C8',
  unknown: '#5F5F5F',
  unregistered: '#4D4D4D',
};

export function experimentColour(community: number): string {
  return PALETTE[FIXED[community] ?? (community * 7) % PALETTE.length]!;
}

export function activityColour(activity: number): string {
  return PALETTE[activity % PALETTE.length]!;
}
