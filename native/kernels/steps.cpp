// steps.cpp — CPU: renoise, euler_step, heun_combine, row_combine, ddim_step.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off", "no-math-errno")
#endif
#include <vector>

#include "cpu_common.h"
#include "ds_paths.h"

namespace ds {
namespace kernels {

using namespace cpu;

namespace {

int check_path(const char* fn, NoisePath path) {
  return validate::path(fn, static_cast<int>(path));
}

std::string sigma_msg(int64_t b, float sf, float st) {
  return "row " + std::to_string(b) + ": sigma_from = " + std::to_string(sf) +
         ", sigma_to = " + std::to_string(st);
}

// Elements per work item of the loops without noise.
constexpr int64_t kChunk = 4096;

}  // namespace

void renoise_cpu(const float* x, int64_t rows, int64_t dim, NoisePath path,
                 const float* sigma_from, const float* sigma_to, uint64_t seed,
                 const int64_t* ids, int64_t step, float* out) {
  static const char* fn = "renoise_cpu";
  const int p = check_path(fn, path);
  check_rows_dim(fn, rows, dim);
  if (rows == 0) return;
  require(sigma_from != nullptr && sigma_to != nullptr, fn, "sigma is null");
  std::vector<detail::RenoiseCoef> coef(static_cast<size_t>(rows));
  for (int64_t b = 0; b < rows; ++b) {
    coef[b] = detail::renoise_coef(p, sigma_from[b], sigma_to[b]);
    if (!coef[b].valid)
      fail(fn, sigma_msg(b, sigma_from[b], sigma_to[b]) +
                   " (need 0 <= sigma_from <= sigma_to <= 1)");
  }
  if (dim == 0) return;
  require(x != nullptr && out != nullptr, fn, "x/out is null");
  for_each_affine_noise_tile(rows, dim, seed, ids, step, [&](int64_t r) {
    return NoiseAffine{out + r * dim, x + r * dim, nullptr, coef[r].scale, 0.0f, coef[r].std};
  });
}

void euler_step_cpu(const float* x, const float* v, int64_t rows, int64_t dim,
                    const float* sigma_from, const float* sigma_to, float* out) {
  static const char* fn = "euler_step_cpu";
  check_rows_dim(fn, rows, dim);
  if (rows == 0 || dim == 0) return;
  require(x && v && out && sigma_from && sigma_to, fn, "null pointer");
  for_each_row_chunk(rows, dim, kChunk, [&](int64_t r, int64_t e0, int64_t n) {
    const float dt = sigma_to[r] - sigma_from[r];
    const float* xr = x + r * dim + e0;
    const float* vr = v + r * dim + e0;
    float* o = out + r * dim + e0;
    for (int64_t i = 0; i < n; ++i) o[i] = xr[i] + dt * vr[i];
  });
}

void row_combine_cpu(const float* x, const float* y, int64_t rows, int64_t dim, const double* coef,
                     int k, float* const* out) {
  static const char* fn = "row_combine_cpu";
  check_rows_dim(fn, rows, dim);
  require(k >= 1 && k <= kRowCombineMax, fn, "k must be in [1, 4]");
  if (rows == 0 || dim == 0) return;
  require(x && y && coef && out, fn, "null pointer");
  for (int j = 0; j < k; ++j) require(out[j] != nullptr, fn, "null pointer");
  for_each_row_chunk(rows, dim, kChunk, [&](int64_t r, int64_t e0, int64_t n) {
    float a[kRowCombineMax], b[kRowCombineMax];
    float* o[kRowCombineMax];
    for (int j = 0; j < k; ++j) {
      a[j] = static_cast<float>(coef[(r * k + j) * 2]);
      b[j] = static_cast<float>(coef[(r * k + j) * 2 + 1]);
      o[j] = out[j] + r * dim + e0;
    }
    const float* xr = x + r * dim + e0;
    const float* yr = y + r * dim + e0;
    for (int64_t i = 0; i < n; ++i) {
      const float xi = xr[i], yi = yr[i];
      for (int j = 0; j < k; ++j) o[j][i] = a[j] * xi + b[j] * yi;
    }
  });
}

void heun_combine_cpu(const float* x, const float* v1, const float* v2, int64_t rows, int64_t dim,
                      const float* sigma_from, const float* sigma_to, float* out) {
  static const char* fn = "heun_combine_cpu";
  check_rows_dim(fn, rows, dim);
  if (rows == 0 || dim == 0) return;
  require(x && v1 && v2 && out && sigma_from && sigma_to, fn, "null pointer");
  for_each_row_chunk(rows, dim, kChunk, [&](int64_t r, int64_t e0, int64_t n) {
    const float h = 0.5f * (sigma_to[r] - sigma_from[r]);
    const float* xr = x + r * dim + e0;
    const float* ar = v1 + r * dim + e0;
    const float* br = v2 + r * dim + e0;
    float* o = out + r * dim + e0;
    for (int64_t i = 0; i < n; ++i) o[i] = xr[i] + h * (ar[i] + br[i]);
  });
}

void ddim_step_cpu(const float* x0_hat, const float* eps_hat, int64_t rows, int64_t dim,
                   NoisePath path, const float* sigma_from, const float* sigma_to, float eta,
                   uint64_t seed, const int64_t* ids, int64_t step, float* out, float* out_std) {
  static const char* fn = "ddim_step_cpu";
  const int p = check_path(fn, path);
  check_rows_dim(fn, rows, dim);
  validate::eta(fn, eta);
  if (rows == 0) return;
  require(sigma_from != nullptr && sigma_to != nullptr, fn, "sigma is null");
  std::vector<detail::DdimCoef> coef(static_cast<size_t>(rows));
  for (int64_t b = 0; b < rows; ++b) {
    coef[b] = detail::ddim_coef(p, sigma_from[b], sigma_to[b], eta);
    if (!coef[b].valid) fail(fn, sigma_msg(b, sigma_from[b], sigma_to[b]) + " (need [0, 1])");
  }
  if (out_std)
    for (int64_t b = 0; b < rows; ++b) out_std[b] = coef[b].s;
  if (dim == 0) return;
  require(x0_hat && eps_hat && out, fn, "null pointer");
  // Rows with s == 0 draw no noise; handle them with a plain chunk loop.
  bool any_noise = false;
  for (int64_t b = 0; b < rows; ++b) any_noise = any_noise || coef[b].s != 0.0f;
  if (!any_noise) {
    for_each_row_chunk(rows, dim, kChunk, [&](int64_t r, int64_t e0, int64_t n) {
      const float a = coef[r].c_x0, ce = coef[r].c_eps;
      const float* xr = x0_hat + r * dim + e0;
      const float* er = eps_hat + r * dim + e0;
      float* o = out + r * dim + e0;
      for (int64_t i = 0; i < n; ++i) o[i] = a * xr[i] + ce * er[i];
    });
    return;
  }
  for_each_row_chunk(rows, dim, kTile, [&](int64_t r, int64_t e0, int64_t n) {
    const float a = coef[r].c_x0, ce = coef[r].c_eps, s = coef[r].s;
    const float* xr = x0_hat + r * dim + e0;
    const float* er = eps_hat + r * dim + e0;
    float* o = out + r * dim + e0;
    if (s == 0.0f) {
      for (int64_t i = 0; i < n; ++i) o[i] = a * xr[i] + ce * er[i];
      return;
    }
    affine_noise_tile(NoiseAffine{o, xr, er, a, ce, s}, seed, row_id(ids, r),
                      static_cast<uint64_t>(step), e0, n);
  });
}

}  // namespace kernels
}  // namespace ds
