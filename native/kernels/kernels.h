// kernels.h — ds::kernels: the per-element work of diffusion-search, plain C++17 / CUDA.
//
// No Node, no torch. Every op exists twice with the same signature:
//   `name_cpu(...)`                 — OpenMP-parallel, built into ds_kernels (native/kernels/*.cpp)
//   `name_cuda(..., void* stream)`  — CUDA, built into ds_kernels_cuda (native/kernels/*.cu);
//                                     `stream` is a cudaStream_t (nullptr = legacy default stream).
//
// Conventions (all ops)
// ---------------------
// * Data are float32, indices/ids int64, all arrays contiguous and row-major. A "row" is one sample
//   of `dim` consecutive floats. Per-sample arrays (sigma_from, s, ids, ...) have one entry per row.
// * CPU functions take host pointers; CUDA functions take DEVICE pointers for every array (scalars
//   are plain host values). CUDA functions only enqueue work on `stream` and return (except
//   effective_sample_size_cuda, which synchronises the stream to return its value). Temporary
//   device memory, where needed, is stream-ordered (cudaMallocAsync/cudaFreeAsync).
// * Errors: bad scalar arguments (negative sizes, k > L, beta outside [0,1], null pointers with
//   non-zero sizes, ...) throw std::invalid_argument on BOTH backends, before any work. The CPU
//   versions also validate the CONTENTS of small per-sample arrays (parent indices, sigmas, ...)
//   and throw std::invalid_argument; the CUDA versions cannot read device data without a
//   synchronisation, so they do not validate contents: instead they are memory-safe and mark the
//   bad rows with NaN (documented per op). The binding should validate those small arrays on the
//   host when it wants a JS error instead of NaNs. CUDA launch/API failures throw
//   std::runtime_error carrying the CUDA error string.
// * Size-0 work (rows == 0, dim == 0, n_winners == 0, k == 0) is a valid no-op.
// * Thread safety: every function is re-entrant; concurrent calls (e.g. from several worker
//   threads / CUDA streams) are safe as long as their output buffers do not overlap.
// * Aliasing: element-wise ops (renoise, euler_step, heun_combine, row_combine, ddim_step, sphere_neighbours)
//   may run in place (out == an input of the same shape). The gathers (mutate_*) must not alias
//   out with parents. Selection outputs must not alias inputs.
//
// Noise (the contract every random op shares)
// -------------------------------------------
// ε(seed, id, step, e) — the noise of element e of the sample with id `id` at step `step` — is
// a pure function of those four values, independent of batch layout, thread count and device:
//   Philox4x32-10 with key = {uint32(seed), uint32(seed >> 32)} and
//   counter = {uint32(e/4), uint32((e/4) >> 32), uint32(id), uint32(step)}
//   (id and step are the low 32 bits of the int64 values; ids that differ by a multiple of 2^32
//   collide). Element e takes lane e%4 of that block's four 32-bit outputs r0..r3.
//   Uniform (fill_uniform): u = ((r >> 8) + 1) · 2^-24, in (0, 1], exact, never 0.
//   Normal: Box–Muller on lane pairs (r0,r1) and (r2,r3): ρ = sqrt(-2 ln u(r0)),
//   θ = 2π·(r1 >> 8)·2^-24; lane 0 gets ρ cos θ, lane 1 gets ρ sin θ (same for lanes 2, 3).
//   |ε| <= 5.77. Precondition: dim < 2^34.
// `sample_ids` may be nullptr, meaning id = row index (0..rows-1).
// Uniforms are bitwise identical on CPU and CUDA. Normals use our own float log (Cephes
// polynomial) and sin/cos of 2π·k·2^-24 (exact integer reduction + Taylor), evaluated with
// explicit FMAs, and the IEEE sqrt — each operation correctly rounded on both sides, so they are
// bitwise identical on CPU and CUDA too: the .cu code uses _rn intrinsics and __fmaf_rn (no FMA
// contraction the compiler chose, independent of --fmad), the .cpp files switch contraction off
// with `#pragma GCC optimize("fp-contract=off")` and call fmaf explicitly (every x86 ISA path,
// SIMD or scalar, gives the same bits: tested). Never build with -ffast-math / --use_fast_math.
// Versus exact Box–Muller in double from the same uniforms: |ε − ε_exact| < 3e-6 (tested; observed
// max 6e-7).
//
// Float accuracy / CPU–CUDA agreement
// -----------------------------------
// Element-wise ops compute their per-row coefficients in double from + - * / sqrt (identical on
// both backends) and then apply them in float without FMA, so CPU and CUDA outputs are expected
// to be bitwise equal. sphere_neighbours uses double reductions whose summation order differs
// between backends: agreement to ~1e-6 relative. Integer outputs (indices) are bitwise equal.
#pragma once

#include <cstdint>

namespace ds {
namespace kernels {

/// Noise path x = a(σ)·x0 + σ·ε, σ ∈ [0, 1].
enum class NoisePath : int32_t {
  RectifiedFlow = 0,  ///< a(σ) = 1 − σ
  VP = 1,             ///< a(σ) = sqrt(1 − σ²)
};

// ------------------------------------------------------------------------------------------------
// Threads (CPU kernels only)

/// Number of OpenMP threads the CPU kernels use. n <= 0 restores the default
/// (omp_get_max_threads() at the time of each call). Process-global, thread-safe; results never
/// depend on it.
void set_num_threads(int n);
/// The thread count the next CPU kernel will use (>= 1).
int get_num_threads();

// ------------------------------------------------------------------------------------------------
// Noise

/// out[r, e] = ε(seed, ids[r], step, e) ~ N(0, 1), for r < rows, e < dim.
void fill_normal_cpu(float* out, int64_t rows, int64_t dim, uint64_t seed,
                     const int64_t* sample_ids, int64_t step);
void fill_normal_cuda(float* out, int64_t rows, int64_t dim, uint64_t seed,
                      const int64_t* sample_ids, int64_t step, void* stream);

/// out[r, e] = uniform in (0, 1] from the same Philox stream: ((r_lane >> 8) + 1)·2^-24.
void fill_uniform_cpu(float* out, int64_t rows, int64_t dim, uint64_t seed,
                      const int64_t* sample_ids, int64_t step);
void fill_uniform_cuda(float* out, int64_t rows, int64_t dim, uint64_t seed,
                       const int64_t* sample_ids, int64_t step, void* stream);

// ------------------------------------------------------------------------------------------------
// Op 1 — Gaussian-preserving mutation fused with the parent gather (EvoSearch initial noise).
/// out[k, :] = sqrt(1−β²)·parents[idx[k], :] + β·ε(seed, child_ids[k], step, :), k < n_children.
/// Coefficient a = sqrtf(1 − β·β) is computed in float. One pass, no temporaries.
/// Preconditions: 0 <= β <= 1; 0 <= idx[k] < n_parents; parents [n_parents, dim];
/// out [n_children, dim] not aliasing parents; child_ids may be nullptr (id = k).
/// CPU: throws std::invalid_argument on an out-of-range idx (checked before writing anything).
/// CUDA: a row whose idx is out of range is filled with NaN (no out-of-bounds read).
void mutate_gaussian_cpu(const float* parents, int64_t n_parents, const int64_t* idx,
                         int64_t n_children, int64_t dim, float beta, uint64_t seed,
                         const int64_t* child_ids, int64_t step, float* out);
void mutate_gaussian_cuda(const float* parents, int64_t n_parents, const int64_t* idx,
                          int64_t n_children, int64_t dim, float beta, uint64_t seed,
                          const int64_t* child_ids, int64_t step, float* out, void* stream);

// ------------------------------------------------------------------------------------------------
// Op 2 — additive mutation of intermediate states (EvoSearch, SDE noise std per child).
/// out[k, :] = parents[idx[k], :] + s[k]·ε(seed, child_ids[k], step, :).
/// s[k] is used as given (any float; the binding may pass the out_std of ddim_step).
/// Same index preconditions / error behaviour as mutate_gaussian.
void mutate_additive_cpu(const float* parents, int64_t n_parents, const int64_t* idx,
                         int64_t n_children, int64_t dim, const float* s, uint64_t seed,
                         const int64_t* child_ids, int64_t step, float* out);
void mutate_additive_cuda(const float* parents, int64_t n_parents, const int64_t* idx,
                          int64_t n_children, int64_t dim, const float* s, uint64_t seed,
                          const int64_t* child_ids, int64_t step, float* out, void* stream);

// ------------------------------------------------------------------------------------------------
// Op 3 — neighbours on the pivot's sphere at cosine τ (zero-order search).
/// For each row b with pivot x = x[b, :] and v = ε(seed, ids[b], step, :):
///   u = x/‖x‖, w = unit(v − (v·u)u), out[b, :] = ‖x‖·(τ·u + sqrt(1−τ²)·w),
/// so cos(out, x) = τ and ‖out‖ = ‖x‖ (to float rounding, ~1e-6 relative). Computed as
/// out = A·x + C·v with per-row A, C derived in double from ‖x‖², x·v, ‖v‖² (one fused reduction
/// pass that regenerates v, one write pass). Rows of several pivots are independent: to make N
/// neighbours of one pivot, repeat the pivot N times with N different ids.
/// Edge cases: ‖x‖ = 0 → out row = 0; if v is (numerically) parallel to x (only possible when
/// dim == 1) → out = τ·x. Preconditions: −1 <= τ <= 1, dim >= 1. In place allowed.
/// Thread-count invariant (fixed-size chunks, fixed-order partial sums).
void sphere_neighbours_cpu(const float* x, int64_t rows, int64_t dim, float tau, uint64_t seed,
                           const int64_t* ids, int64_t step, float* out);
void sphere_neighbours_cuda(const float* x, int64_t rows, int64_t dim, float tau, uint64_t seed,
                            const int64_t* ids, int64_t step, float* out, void* stream);

// ------------------------------------------------------------------------------------------------
// Op 4 — forward re-noising along the path from σ_from[b] to σ_to[b] >= σ_from[b].
/// out = (a_t/a_f)·x + sqrt(max(0, σ_t² − (a_t/a_f)²·σ_f²))·ε(seed, ids[b], step, :)
/// with a = a(σ) of `path` (coefficients in double, applied in float).
/// Requires 0 <= σ_from[b] <= σ_to[b] <= 1. σ_from = σ_to gives out = x exactly;
/// σ_from = 1 (a_f = 0, so σ_to = 1) is the identity. In place allowed.
/// CPU: invalid σ (NaN, outside [0,1], σ_to < σ_from) throws std::invalid_argument.
/// CUDA: such rows are filled with NaN.
void renoise_cpu(const float* x, int64_t rows, int64_t dim, NoisePath path,
                 const float* sigma_from, const float* sigma_to, uint64_t seed,
                 const int64_t* ids, int64_t step, float* out);
void renoise_cuda(const float* x, int64_t rows, int64_t dim, NoisePath path,
                  const float* sigma_from, const float* sigma_to, uint64_t seed,
                  const int64_t* ids, int64_t step, float* out, void* stream);

// ------------------------------------------------------------------------------------------------
// Op 5 — batched sampler steps with per-sample σ_from[b], σ_to[b] (any order, any finite values).

/// out = x + (σ_to − σ_from)·v, with dt = σ_to − σ_from computed in float. In place allowed.
void euler_step_cpu(const float* x, const float* v, int64_t rows, int64_t dim,
                    const float* sigma_from, const float* sigma_to, float* out);
void euler_step_cuda(const float* x, const float* v, int64_t rows, int64_t dim,
                     const float* sigma_from, const float* sigma_to, float* out, void* stream);

/// Heun's second stage: out = x + h·(v1 + v2) with h = 0.5f·(σ_to − σ_from) (float).
/// In place allowed.
void heun_combine_cpu(const float* x, const float* v1, const float* v2, int64_t rows, int64_t dim,
                      const float* sigma_from, const float* sigma_to, float* out);
void heun_combine_cuda(const float* x, const float* v1, const float* v2, int64_t rows,
                       int64_t dim, const float* sigma_from, const float* sigma_to, float* out,
                       void* stream);

/// Up to kRowCombineMax outputs from two inputs, row by row:
///   out[j][r, :] = float(coef[(r·k + j)·2])·x[r, :] + float(coef[(r·k + j)·2 + 1])·y[r, :]
/// A sampler's step is linear in the state x and the model output y per row (x̂0, ε̂, the velocity,
/// the next state), so one pass gives what took a kernel each. coef [rows, k, 2] is double (the
/// caller folds its per-row maths there; CUDA: a device pointer), applied in float without FMA.
/// `out` is a host array of k output pointers (CUDA: device pointers). 1 <= k <= kRowCombineMax.
/// Every element reads x and y before writing: in place allowed.
constexpr int kRowCombineMax = 4;
void row_combine_cpu(const float* x, const float* y, int64_t rows, int64_t dim, const double* coef,
                     int k, float* const* out);
void row_combine_cuda(const float* x, const float* y, int64_t rows, int64_t dim,
                      const double* coef, int k, float* const* out, void* stream);

/// Stochastic DDIM-η step from the predictions x̂0, ε̂ (generalised to x = a·x0 + σ·ε):
///   s      = η·σ_t·sqrt(max(0, 1 − (a_f·σ_t / (a_t·σ_f))²))     (posterior std; 0 if η = 0)
///   out    = a_t·x̂0 + sqrt(max(0, σ_t² − s²))·ε̂ + s·z,   z = ε(seed, ids[b], step, :)
///   out_std[b] = s (the injected noise std; EvoSearch's intermediate mutation strength).
/// Edge cases (all give s = 0, a deterministic step): η = 0 (the DDIM step
/// out = a_t·x̂0 + σ_t·ε̂); σ_from = 0; σ_to = 0 (out = x̂0); a_to = 0, i.e. σ_to = 1
/// (out = ε̂). If σ_to > σ_from the sqrt argument is negative and clamps to 0 (s = 0).
/// η > 1 is allowed (σ_t² − s² then clamps at 0). When s = 0 for a row no noise is drawn and the
/// z term is omitted. Requires σ ∈ [0,1] and η >= 0 finite; out_std may be nullptr. In place
/// (out == x0_hat or eps_hat) allowed.
/// CPU: σ outside [0,1]/NaN throws std::invalid_argument. CUDA: such rows get NaN (out and out_std).
void ddim_step_cpu(const float* x0_hat, const float* eps_hat, int64_t rows, int64_t dim,
                   NoisePath path, const float* sigma_from, const float* sigma_to, float eta,
                   uint64_t seed, const int64_t* ids, int64_t step, float* out, float* out_std);
void ddim_step_cuda(const float* x0_hat, const float* eps_hat, int64_t rows, int64_t dim,
                    NoisePath path, const float* sigma_from, const float* sigma_to, float eta,
                    uint64_t seed, const int64_t* ids, int64_t step, float* out, float* out_std,
                    void* stream);

// ------------------------------------------------------------------------------------------------
// Op 6 — selection. Rank order used throughout: descending value, NaN treated as −inf,
// −0 == +0, ties → lower index first (a strict total order, so results are unique).

/// values [S, L] → out_values [S, k], out_indices [S, k] (within-segment indices 0..L−1), each
/// segment's top k in rank order. out_values[s, j] = values[s, out_indices[s, j]] (the original
/// value, so a selected NaN stays NaN). Requires 0 <= k <= L, L < 2^32.
void topk_segments_cpu(const float* values, int64_t S, int64_t L, int64_t k, float* out_values,
                       int64_t* out_indices);
void topk_segments_cuda(const float* values, int64_t S, int64_t L, int64_t k, float* out_values,
                        int64_t* out_indices, void* stream);

/// Tournament selection over fitness[P]. Tournament t (0 <= t < n_winners) draws
/// tournament_size entrants uniformly with replacement: entrant j = (r_j · P) >> 32 where r_j is
/// lane j%4 of Philox(key = seed, counter = {j/4, 0xD5000001, t, uint32(step)}); the winner is
/// the best entrant in rank order (highest fitness, ties → lower index). out_idx[t] = winner.
/// Requires P >= 1 (if n_winners > 0), 1 <= tournament_size < 2^31, P <= 2^32.
/// (The binding converts a tournament fraction f to size = max(1, round(f·P)).)
void tournament_select_cpu(const float* fitness, int64_t P, int64_t n_winners,
                           int64_t tournament_size, uint64_t seed, int64_t step, int64_t* out_idx);
void tournament_select_cuda(const float* fitness, int64_t P, int64_t n_winners,
                            int64_t tournament_size, uint64_t seed, int64_t step, int64_t* out_idx,
                            void* stream);

/// Resampling from log-weights log_w[n] (unnormalised). Weights, in double:
///   m = max over non-NaN log_w; w_i = exp(log_w_i − m) (NaN → 0).
///   Degenerate inputs: if m = +inf, w_i = 1 for the +inf entries and 0 otherwise; if every entry
///   is −inf or NaN, all w_i = 1 (uniform).
/// CDF: fixed-order prefix sums (chunks of 256 entries, sequential within and across chunks;
/// identical on CPU and CUDA), T = cdf[n−1]. Draw j selects the smallest i with cdf[i] > t_j,
/// or, if t_j >= T (rounding), the smallest i with cdf[i] >= T (the last positive weight).
/// Never selects a zero-weight entry.
/// Multinomial: t_j = u_j·T, u_j ∈ (0,1) a 52-bit double from lanes (2(j%2), 2(j%2)+1) of
///   Philox(key = seed, counter = {j/2, 0xD5000002, (j/2) >> 32, uint32(step)}).
/// Systematic: t_j = ((j + u)/n_out)·T with one u ∈ (0,1) from lanes 0,1 of
///   Philox(key = seed, counter = {0, 0xD5000003, 0, uint32(step)}).
/// Requires n >= 1, n_out >= 1. out_idx [n_out] (int64, in [0, n)).
void resample_multinomial_cpu(const float* log_w, int64_t n, int64_t n_out, uint64_t seed,
                              int64_t step, int64_t* out_idx);
void resample_multinomial_cuda(const float* log_w, int64_t n, int64_t n_out, uint64_t seed,
                               int64_t step, int64_t* out_idx, void* stream);
void resample_systematic_cpu(const float* log_w, int64_t n, int64_t n_out, uint64_t seed,
                             int64_t step, int64_t* out_idx);
void resample_systematic_cuda(const float* log_w, int64_t n, int64_t n_out, uint64_t seed,
                              int64_t step, int64_t* out_idx, void* stream);

/// Effective sample size 1/Σ w̄_i² = T²/Σ w_i² of the normalised weights defined above
/// (1 <= ESS <= n). Requires n >= 1. The CUDA version synchronises `stream` to return the value.
double effective_sample_size_cpu(const float* log_w, int64_t n);
double effective_sample_size_cuda(const float* log_w, int64_t n, void* stream);

}  // namespace kernels
}  // namespace ds
