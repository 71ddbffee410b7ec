/** "Did you mean ...?": the nearest name by edit distance, when near enough to be a typo. */

export interface ClosestOptions {
  /** Applied to the word and to every name before comparing (default: lower case, without a `task_` prefix or underscores). */
  readonly normalize?: (s: string) => string;
  /** A name is near enough when its distance is at most max(2, floor(length / divisor)) (default 3). */
  readonly divisor?: number;
}

const loose = (s: string): string =>
  s
    .toLowerCase()
    .replace(/^task_/, '')
    .replace(/_/g, '');

export function closest(
  word: string,
  names: readonly string[],
  opts: ClosestOptions = {},
): string | undefined {
  const normalize = opts.normalize ?? loose;
  const target = normalize(word);
  let best: string | undefined;
  let bestD = Infinity;
  for (const n of names) {
    const d = editDistance(target, normalize(n));
    if (d < bestD) {
      bestD = d;
      best = n;
    }
  }
  return bestD <= Math.max(2, Math.floor(target.length / (opts.divisor ?? 3))) ? best : undefined;
}

/** Levenshtein distance (insert, delete, substitute; each costs 1). */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] as number;
      prev[j] = Math.min(
        up + 1,
        (prev[j - 1] as number) + 1,
        diag + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      diag = up;
    }
  }
  return prev[b.length] as number;
}
