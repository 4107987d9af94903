/** Small dense symmetric linear algebra in float64 (for Fréchet distances on ≤ a few hundred dims). */

/** Eigenvalues and eigenvectors (columns of V) of a symmetric matrix, by cyclic Jacobi rotations. */
export function symmetricEigen(A: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(A);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1),
          s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p],
            akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k],
            aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p],
            vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  return { values: Float64Array.from({ length: n }, (_, i) => a[i * n + i]), vectors: v };
}

function matmul(A: Float64Array, B: Float64Array, n: number): Float64Array {
  const C = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < n; k++) {
      const aik = A[i * n + k];
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) C[i * n + j] += aik * B[k * n + j];
    }
  return C;
}

/** The PSD square root of a symmetric matrix (negative eigenvalues from rounding clamp to 0). */
export function sqrtPsd(A: Float64Array, n: number): Float64Array {
  const { values, vectors: V } = symmetricEigen(A, n);
  const D = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) D[i * n + j] = V[i * n + j] * Math.sqrt(Math.max(0, values[j]));
  const Vt = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) Vt[i * n + j] = V[j * n + i];
  return matmul(D, Vt, n);
}

/** Fréchet distance between N(mu1, S1) and N(mu2, S2): ‖mu1−mu2‖² + tr(S1 + S2 − 2·(S1^½ S2 S1^½)^½). */
export function frechetDistance(
  mu1: ArrayLike<number>,
  S1: ArrayLike<number>,
  mu2: ArrayLike<number>,
  S2: ArrayLike<number>,
  n: number,
): number {
  let d2 = 0;
  for (let i = 0; i < n; i++) d2 += (mu1[i] - mu2[i]) ** 2;
  const r1 = sqrtPsd(Float64Array.from(S1), n);
  const M = matmul(matmul(r1, Float64Array.from(S2), n), r1, n);
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) M[i * n + j] = M[j * n + i] = (M[i * n + j] + M[j * n + i]) / 2;
  const { values } = symmetricEigen(M, n);
  let tr = 0;
  for (let i = 0; i < n; i++) tr += S1[i * n + i] + S2[i * n + i];
  for (const l of values) tr -= 2 * Math.sqrt(Math.max(0, l));
  return d2 + tr;
}

/** Mean and covariance (rows are observations; unbiased when n > 1). */
export function meanCov(X: ArrayLike<number>, rows: number, dim: number): { mu: Float64Array; cov: Float64Array } {
  const mu = new Float64Array(dim);
  for (let r = 0; r < rows; r++) for (let d = 0; d < dim; d++) mu[d] += X[r * dim + d] / rows;
  const cov = new Float64Array(dim * dim);
  const denom = Math.max(1, rows - 1);
  for (let r = 0; r < rows; r++)
    for (let i = 0; i < dim; i++) {
      const xi = X[r * dim + i] - mu[i];
      for (let j = 0; j < dim; j++) cov[i * dim + j] += (xi * (X[r * dim + j] - mu[j])) / denom;
    }
  return { mu, cov };
}
