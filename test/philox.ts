/** An independent float64 reference of the noise contract in native/kernels/kernels.h. */

function mulhilo(a: number, b: number): [number, number] {
  const lo = Math.imul(a, b) >>> 0;
  const aH = a >>> 16,
    aL = a & 0xffff,
    bH = b >>> 16,
    bL = b & 0xffff;
  const ll = aL * bL,
    lh = aL * bH,
    hl = aH * bL,
    hh = aH * bH;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  const hi = (hh + Math.floor(lh / 65536) + Math.floor(hl / 65536) + Math.floor(mid / 65536)) >>> 0;
  return [hi, lo];
}

/** Philox4x32-10 (Salmon et al., SC'11): four 32-bit outputs of a counter under a key. */
export function philox(
  counter: [number, number, number, number],
  key: [number, number],
): [number, number, number, number] {
  let [c0, c1, c2, c3] = counter.map((x) => x >>> 0);
  let [k0, k1] = key.map((x) => x >>> 0);
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + 0x9e3779b9) >>> 0;
      k1 = (k1 + 0xbb67ae85) >>> 0;
    }
    const [hi0, lo0] = mulhilo(0xd2511f53, c0);
    const [hi1, lo1] = mulhilo(0xcd9e8d57, c2);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
  }
  return [c0, c1, c2, c3];
}

const seedKey = (seed: bigint): [number, number] => [Number(seed & 0xffffffffn), Number((seed >> 32n) & 0xffffffffn)];
const low32 = (x: number) => Number(BigInt.asUintN(32, BigInt(x)));

function block(seed: bigint, id: number, step: number, e: number) {
  const b = Math.floor(e / 4);
  return philox([b >>> 0, Math.floor(b / 2 ** 32) >>> 0, low32(id), low32(step)], seedKey(seed));
}

export const uniformOf = (r: number) => ((r >>> 8) + 1) * 2 ** -24;

export function refUniform(seed: bigint, id: number, step: number, e: number): number {
  return uniformOf(block(seed, id, step, e)[e % 4]);
}

/** Box–Muller in float64 on lane pairs (0,1) and (2,3). */
export function refNormal(seed: bigint, id: number, step: number, e: number): number {
  const r = block(seed, id, step, e);
  const lane = e % 4,
    pair = lane < 2 ? 0 : 2;
  const rho = Math.sqrt(-2 * Math.log(uniformOf(r[pair])));
  const theta = 2 * Math.PI * (r[pair + 1] >>> 8) * 2 ** -24;
  return lane % 2 === 0 ? rho * Math.cos(theta) : rho * Math.sin(theta);
}

/** Tournament entrant j of tournament t (the kernels' counter layout for selection). */
export function refTournament(fitness: Float32Array, t: number, size: number, seed: bigint, step: number): number {
  const P = fitness.length;
  let best = -1;
  for (let j = 0; j < size; j++) {
    const r = philox([Math.floor(j / 4) >>> 0, 0xd5000001, t >>> 0, low32(step)], seedKey(seed))[j % 4];
    const entrant = Number((BigInt(r) * BigInt(P)) >> 32n);
    const v = Number.isNaN(fitness[entrant]) ? -Infinity : fitness[entrant];
    const bv = best < 0 ? -Infinity : Number.isNaN(fitness[best]) ? -Infinity : fitness[best];
    if (best < 0 || v > bv || (v === bv && entrant < best)) best = entrant;
  }
  return best;
}
