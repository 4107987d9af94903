/**
 * "Did you mean": the candidate nearest to a misspelled name. A plain edit distance (a dozen
 * lines, with neighbour swaps) rather than a dependency (leven, fastest-levenshtein): names here
 * are short and few, so speed does not matter, and the package keeps its dependency list small.
 */

/** Edit distance between a and b, case-insensitive; swapping two neighbours ('Shrit') is one edit. */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase(),
    t = b.toLowerCase();
  const d = Array.from({ length: s.length + 1 }, (_, i) =>
    Array.from({ length: t.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= s.length; i++)
    for (let j = 1; j <= t.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (s[i - 1] === t[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[s.length][t.length];
}

/** The nearest candidate when it is close enough to be a likely typo (at most a third of its letters off). */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined,
    bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(Math.max(word.length, best.length) / 3))
    ? best
    : undefined;
}

/** ` (did you mean 'x'?)`, or nothing. */
export function didYouMean(word: string, candidates: readonly string[], quote = (s: string) => `'${s}'`): string {
  const n = nearest(word, candidates);
  return n === undefined ? '' : ` (did you mean ${quote(n)}?)`;
}
