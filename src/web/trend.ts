/**
 * Queue trend per destination for the summary: samples of messages per domain,
 * taken at most once a minute and kept for 30 minutes; the trend is the change
 * against the sample nearest to 15 minutes ago (or the oldest one).
 * @module
 */

/** Per-domain sample history. */
export interface TrendSampler {
  /** Records counts (ignored when the last sample is under a minute old). */
  sample(now: number, counts: Record<string, number>): void;
  /** Change in messages since about 15 minutes ago; undefined without an earlier sample. */
  delta(domain: string, now: number): number | undefined;
}

const EVERY = 60_000;
const KEEP = 30 * 60_000;
const WINDOW = 15 * 60_000;

/** Creates a sampler. */
export function createTrendSampler(): TrendSampler {
  let samples: { at: number; counts: Record<string, number> }[] = [];
  return {
    sample(now, counts) {
      const last = samples.at(-1);
      if (last && now - last.at < EVERY) {
        if (samples.length > 1) last.counts = counts; // the newest moves; the first stays the baseline
        return;
      }
      samples.push({ at: now, counts });
      samples = samples.filter((s) => now - s.at <= KEEP);
    },
    delta(domain, now) {
      const current = samples.at(-1);
      const earlier = samples.find((s) => now - s.at <= WINDOW + EVERY) ?? samples[0];
      if (!current || !earlier || earlier === current) return undefined;
      return (current.counts[domain] ?? 0) - (earlier.counts[domain] ?? 0);
    },
  };
}
