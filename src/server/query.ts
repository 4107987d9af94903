/** The options of GET /v1/generate/stream from its query string (EventSource cannot send a body). */

/** GET /v1/generate/stream?model=gmm2d&budget=100: numbers and JSON values parsed, repeated keys as arrays. */
export function fromQuery(q: URLSearchParams): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of new Set(q.keys())) {
    const vals = q.getAll(key).map((v) => {
      try {
        const j = JSON.parse(v) as unknown;
        return typeof j === 'number' || typeof j === 'boolean' || typeof j === 'object' ? j : v;
      } catch {
        return v;
      }
    });
    out[key] =
      vals.length > 1 || key === 'verifier' || key === 'prompt'
        ? key === 'prompt' && vals.length === 1
          ? vals[0]
          : vals.flat()
        : vals[0];
  }
  return out;
}
