const BARS = "▁▂▃▄▅▆▇█";

/**
 * A one-line terminal chart of a series, e.g. `█▆▄▃▂▂▁▁`. Longer series are resampled
 * (by averaging) to `width` characters; non-finite values are skipped.
 *
 * @example
 * ```ts
 * sparkline(job.progress().snapshots.map((s) => s.meanLoss), 30);
 * ```
 */
export function sparkline(values: readonly number[], width = 40): string {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0 || width < 1) return "";
  const buckets = resample(finite, Math.min(width, finite.length));
  const min = Math.min(...buckets);
  const max = Math.max(...buckets);
  const span = max - min;
  return buckets
    .map((v) => {
      const level = span === 0 ? 0 : Math.round(((v - min) / span) * (BARS.length - 1));
      return BARS[level];
    })
    .join("");
}

function resample(values: readonly number[], width: number): number[] {
  if (values.length === width) return [...values];
  const out: number[] = [];
  for (let i = 0; i < width; i++) {
    const start = Math.floor((i * values.length) / width);
    const end = Math.max(start + 1, Math.floor(((i + 1) * values.length) / width));
    const slice = values.slice(start, end);
    out.push(slice.reduce((a, b) => a + b, 0) / slice.length);
  }
  return out;
}
