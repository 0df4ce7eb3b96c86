/**
 * Proportional split of a flow's counts over the buckets its [start, end) span covers.
 *
 * The share of the slice [a, b) (offsets from the flow start) of a span of length `span` is
 *   cum(b) - cum(a), with cum(x) = floor(total * x / span), cum(span) = total.
 * This is cumulative rounding: the shares of consecutive slices telescope, so they sum to
 * `total` exactly whatever the float rounding, each is a non-negative integer (for integer
 * totals) within 1 of its exact proportional value — the guarantee largest-remainder gives,
 * without sorting or allocating per record.
 */
export function cumulativeShare(total: number, a: number, b: number, span: number): number {
  return cum(total, b, span) - cum(total, a, span);
}

function cum(total: number, x: number, span: number): number {
  if (x <= 0) return 0;
  if (x >= span) return total;
  return Math.floor((total * x) / span);
}
