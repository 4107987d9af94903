// A small consumer of the packed package, compiled by `npm run test:types` (scripts/dev/docs-snippets.js)
// in a fresh ESM project whose tsconfig is what `tsc --init` writes: strict, module nodenext,
// exactOptionalPropertyTypes, "types": []. It touches the public API a TypeScript user reaches for
// first, so a declaration that needs a setting the user would not have fails here.
import {
  createEngine,
  DiffusionSearchError,
  FunctionVerifier,
  generate,
  isDiffusionSearchError,
  ops,
  schedules,
  tensor,
  type ErrorCode,
  type GenerateOptions,
  type GenerateResult,
  type Tensor,
} from 'diffusion-search';
import { createServer as createHttpServer, type Server } from 'node:http';

const options: GenerateOptions = { model: 'gmm2d', algorithm: 'best-of-n', budget: 40, n: 2, seed: 3 };

async function once(): Promise<number[]> {
  const ctl = new AbortController();
  const r: GenerateResult = await generate(options, { signal: ctl.signal, onProgress: (p) => void p.nfe });
  return r.rewards;
}

async function withEngine(): Promise<void> {
  const engine = createEngine({ maxQueue: 8 });
  try {
    const verifier = new FunctionVerifier('mean', async (x0: Tensor) => {
      const a = (await x0.toArray()) as Float32Array;
      return new Float32Array(x0.shape[0] ?? 0).fill(a[0] ?? 0);
    });
    const r = await engine.generate({ ...options, verifier: [verifier] });
    const first: number | undefined = r.rewards[0];
    void first;
  } finally {
    await engine.close();
  }
}

async function native(): Promise<void> {
  const x = await ops.randn([4, 2], { seed: 7n, ids: [0, 1, 2, 3] });
  const y = tensor(new Float32Array(8), [4, 2]);
  const sigmas: number[] = Array.from(schedules.uniform(10));
  x.dispose();
  y.dispose();
  void sigmas;
}

function codeOf(e: unknown): ErrorCode | null {
  if (e instanceof DiffusionSearchError) return e.code;
  return isDiffusionSearchError(e) ? e.code : null;
}

// Node's own types come with the package's declarations: no "types": ["node"] in the tsconfig.
function service(): Server {
  return createHttpServer((_req, res) => res.end(process.env.HOME ?? ''));
}

export { once, withEngine, native, codeOf, service };
