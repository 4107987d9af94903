// noise.cpp — CPU: fill_normal, fill_uniform, mutate_gaussian, mutate_additive, sphere_neighbours.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off", "no-math-errno")
#endif
#include <cmath>
#include <vector>

#include "cpu_common.h"

namespace ds {
namespace kernels {

using namespace cpu;

void fill_normal_cpu(float* out, int64_t rows, int64_t dim, uint64_t seed,
                     const int64_t* sample_ids, int64_t step) {
  static const char* fn = "fill_normal_cpu";
  check_rows_dim(fn, rows, dim);
  if (rows == 0 || dim == 0) return;
  require(out != nullptr, fn, "out is null");
  for_each_affine_noise_tile(rows, dim, seed, sample_ids, step, [&](int64_t r) {
    return NoiseAffine{out + r * dim, nullptr, nullptr, 0.0f, 0.0f, 0.0f};
  });
}

void fill_uniform_cpu(float* out, int64_t rows, int64_t dim, uint64_t seed,
                      const int64_t* sample_ids, int64_t step) {
  static const char* fn = "fill_uniform_cpu";
  check_rows_dim(fn, rows, dim);
  if (rows == 0 || dim == 0) return;
  require(out != nullptr, fn, "out is null");
  for_each_row_chunk(rows, dim, kTile, [&](int64_t r, int64_t e0, int64_t n) {
    alignas(64) float u[kTile];
    uniform_tile(u, seed, row_id(sample_ids, r), static_cast<uint64_t>(step), e0, n);
    float* o = out + r * dim + e0;
    for (int64_t i = 0; i < n; ++i) o[i] = u[i];
  });
}

namespace {

void check_mutation(const char* fn, const float* parents, int64_t n_parents, const int64_t* idx,
                    int64_t n_children, int64_t dim, const float* out) {
  validate::mutation(fn, parents, n_parents, idx, n_children, dim, out);
  if (n_children == 0 || dim == 0) return;
  for (int64_t k = 0; k < n_children; ++k) {
    if (idx[k] < 0 || idx[k] >= n_parents)
      fail(fn, "idx[" + std::to_string(k) + "] = " + std::to_string(idx[k]) +
                   " out of range [0, " + std::to_string(n_parents) + ")");
  }
}

}  // namespace

void mutate_gaussian_cpu(const float* parents, int64_t n_parents, const int64_t* idx,
                         int64_t n_children, int64_t dim, float beta, uint64_t seed,
                         const int64_t* child_ids, int64_t step, float* out) {
  static const char* fn = "mutate_gaussian_cpu";
  validate::beta(fn, beta);
  check_mutation(fn, parents, n_parents, idx, n_children, dim, out);
  if (n_children == 0 || dim == 0) return;
  const float a = detail::fsqrt(detail::fsub(1.0f, detail::fmul(beta, beta)));
  const float b = beta;
  for_each_affine_noise_tile(n_children, dim, seed, child_ids, step, [&](int64_t k) {
    return NoiseAffine{out + k * dim, parents + idx[k] * dim, nullptr, a, 0.0f, b};
  });
}

void mutate_additive_cpu(const float* parents, int64_t n_parents, const int64_t* idx,
                         int64_t n_children, int64_t dim, const float* s, uint64_t seed,
                         const int64_t* child_ids, int64_t step, float* out) {
  static const char* fn = "mutate_additive_cpu";
  check_mutation(fn, parents, n_parents, idx, n_children, dim, out);
  if (n_children == 0 || dim == 0) return;
  require(s != nullptr, fn, "s is null");
  // p + s·z as 1·p + s·z: multiplying by one is exact, so the bits are the same.
  for_each_affine_noise_tile(n_children, dim, seed, child_ids, step, [&](int64_t k) {
    return NoiseAffine{out + k * dim, parents + idx[k] * dim, nullptr, 1.0f, 0.0f, s[k]};
  });
}

// ---------------------------------------------------------------------------------------------
// sphere_neighbours: pass 1 accumulates, per (row, chunk of kTile elements), xx = Σx², xv = Σx·v,
// vv = Σv² in double with 8 interleaved accumulators (fixed order, vectorisable without
// reassociation); the chunk partials are summed in chunk order. Pass 2 writes A·x + C·v.

namespace {

struct SphereCoef {
  float a, c;
};

inline SphereCoef sphere_coef(double xx, double xv, double vv, float tau) {
  if (!(xx > 0.0)) return {0.0f, 0.0f};  // x = 0 -> out = 0
  const double t = tau;
  const double st = std::sqrt(std::max(0.0, 1.0 - t * t));
  const double wn2 = vv - xv * xv / xx;  // ‖v − (v·u)u‖²
  if (!(wn2 > 0.0) || st == 0.0) return {static_cast<float>(t), 0.0f};
  const double r = std::sqrt(xx);
  const double c = r * st / std::sqrt(wn2);
  const double a = t - c * xv / xx;
  return {static_cast<float>(a), static_cast<float>(c)};
}

}  // namespace

void sphere_neighbours_cpu(const float* x, int64_t rows, int64_t dim, float tau, uint64_t seed,
                           const int64_t* ids, int64_t step, float* out) {
  static const char* fn = "sphere_neighbours_cpu";
  check_rows_dim(fn, rows, dim);
  validate::tau(fn, tau);
  if (rows == 0) return;
  require(dim >= 1, fn, "dim must be >= 1");
  require(x != nullptr && out != nullptr, fn, "x/out is null");
  const int64_t tpr = (dim + kTile - 1) / kTile;
  std::vector<double> part(static_cast<size_t>(rows * tpr * 3));
  for_each_noise_tile(rows, dim, seed, ids, step,
                      [&](int64_t r, int64_t e0, int64_t n, const float* z) {
                        const float* __restrict xr = x + r * dim + e0;
                        double axx[8] = {0}, axv[8] = {0}, avv[8] = {0};
                        int64_t i = 0;
                        for (; i + 8 <= n; i += 8) {
                          for (int l = 0; l < 8; ++l) {
                            const double xe = xr[i + l], ve = z[i + l];
                            axx[l] += xe * xe;
                            axv[l] += xe * ve;
                            avv[l] += ve * ve;
                          }
                        }
                        for (int l = 0; i < n; ++i, ++l) {
                          const double xe = xr[i], ve = z[i];
                          axx[l] += xe * xe;
                          axv[l] += xe * ve;
                          avv[l] += ve * ve;
                        }
                        double sxx = 0, sxv = 0, svv = 0;
                        for (int l = 0; l < 8; ++l) {
                          sxx += axx[l];
                          sxv += axv[l];
                          svv += avv[l];
                        }
                        double* p = &part[static_cast<size_t>((r * tpr + e0 / kTile) * 3)];
                        p[0] = sxx;
                        p[1] = sxv;
                        p[2] = svv;
                      });
  std::vector<SphereCoef> coef(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    double xx = 0, xv = 0, vv = 0;
    for (int64_t c = 0; c < tpr; ++c) {
      const double* p = &part[static_cast<size_t>((r * tpr + c) * 3)];
      xx += p[0];
      xv += p[1];
      vv += p[2];
    }
    coef[static_cast<size_t>(r)] = sphere_coef(xx, xv, vv, tau);
  }
  for_each_affine_noise_tile(rows, dim, seed, ids, step, [&](int64_t r) {
    const SphereCoef k = coef[static_cast<size_t>(r)];
    return NoiseAffine{out + r * dim, x + r * dim, nullptr, k.a, 0.0f, k.c};
  });
}

}  // namespace kernels
}  // namespace ds
