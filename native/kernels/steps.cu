// steps.cu — CUDA: renoise, euler_step, heun_combine, row_combine, ddim_step.
#include "cuda_common.cuh"
#include "ds_paths.h"

namespace ds {
namespace kernels {

using namespace cuda;
using detail::fadd;
using detail::fmul;
using detail::fsub;

namespace {

constexpr float kNaNf = __builtin_nanf("");

// Per-row coefficients: renoise -> (scale, std, -, -); ddim -> (c_x0, c_eps, s, -). Invalid rows
// get NaN coefficients (so their outputs are NaN) and NaN out_std.
__global__ void renoise_coef_kernel(int path, const float* sf, const float* st, int64_t rows,
                                    float4* coef) {
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < rows;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const detail::RenoiseCoef c = detail::renoise_coef(path, sf[r], st[r]);
    coef[r] = c.valid ? make_float4(c.scale, c.std, 0.0f, 0.0f)
                      : make_float4(kNaNf, kNaNf, kNaNf, 0.0f);
  }
}

__global__ void ddim_coef_kernel(int path, const float* sf, const float* st, float eta,
                                 int64_t rows, float4* coef, float* out_std) {
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < rows;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const detail::DdimCoef c = detail::ddim_coef(path, sf[r], st[r], eta);
    const float4 v = c.valid ? make_float4(c.c_x0, c.c_eps, c.s, 0.0f)
                             : make_float4(kNaNf, kNaNf, kNaNf, 0.0f);
    coef[r] = v;
    if (out_std) out_std[r] = v.z;
  }
}

// Writes coef[row].x·x + coef[row].y·ε (ScaledNoiseOp in cuda_common.cuh).
template <bool Vec>
using RenoiseOp = ScaledNoiseOp<Vec, float4>;

// out = (a·x0 + ce·eps) [+ s·z when s != 0]; mirrors ddim_step_cpu exactly.
template <bool Vec>
struct DdimOp {
  const float* x0;
  const float* eps;
  const float4* coef;
  int64_t dim;
  float* out;
  template <class Gen>
  __device__ void operator()(int64_t row, int64_t e0, int n, Gen&& gen) const {
    const float4 c = coef[row];
    const float* xr = x0 + row * dim + e0;
    const float* er = eps + row * dim + e0;
    float* o = out + row * dim + e0;
    float xv[4], ev[4], r[4];
    if (Vec) {
      const float4 a = ld4(xr), b = ld4(er);
      xv[0] = a.x, xv[1] = a.y, xv[2] = a.z, xv[3] = a.w;
      ev[0] = b.x, ev[1] = b.y, ev[2] = b.z, ev[3] = b.w;
    } else {
      for (int i = 0; i < n; ++i) xv[i] = xr[i], ev[i] = er[i];
      for (int i = n; i < 4; ++i) xv[i] = 0.0f, ev[i] = 0.0f;
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) r[i] = fadd(fmul(c.x, xv[i]), fmul(c.y, ev[i]));
    if (c.z != 0.0f) {  // NaN (invalid row) also takes this path: output NaN either way
      float z[4];
      gen(z);
#pragma unroll
      for (int i = 0; i < 4; ++i) r[i] = fadd(r[i], fmul(c.z, z[i]));
    }
    if (Vec) {
      st4(o, make_float4(r[0], r[1], r[2], r[3]));
    } else {
      for (int i = 0; i < n; ++i) o[i] = r[i];
    }
  }
};

template <bool Vec>
__global__ void euler_kernel(const float* x, const float* v, int64_t rows, int64_t dim,
                             const float* sf, const float* st, float* out) {
  const int64_t nb = (dim + 3) >> 2;
  const int64_t total = rows * nb;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = t / nb;
    const int64_t e0 = (t - row * nb) << 2;
    const float dt = fsub(st[row], sf[row]);
    const int64_t off = row * dim + e0;
    if (Vec) {
      const float4 a = ld4(x + off), b = ld4(v + off);
      st4(out + off, make_float4(fadd(a.x, fmul(dt, b.x)), fadd(a.y, fmul(dt, b.y)),
                                 fadd(a.z, fmul(dt, b.z)), fadd(a.w, fmul(dt, b.w))));
    } else {
      const int n = static_cast<int>(dim - e0 < 4 ? dim - e0 : 4);
      for (int i = 0; i < n; ++i) out[off + i] = fadd(x[off + i], fmul(dt, v[off + i]));
    }
  }
}

template <bool Vec>
__global__ void heun_kernel(const float* x, const float* v1, const float* v2, int64_t rows,
                            int64_t dim, const float* sf, const float* st, float* out) {
  const int64_t nb = (dim + 3) >> 2;
  const int64_t total = rows * nb;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = t / nb;
    const int64_t e0 = (t - row * nb) << 2;
    const float h = fmul(0.5f, fsub(st[row], sf[row]));
    const int64_t off = row * dim + e0;
    if (Vec) {
      const float4 a = ld4(x + off), b = ld4(v1 + off), c = ld4(v2 + off);
      st4(out + off, make_float4(fadd(a.x, fmul(h, fadd(b.x, c.x))),
                                 fadd(a.y, fmul(h, fadd(b.y, c.y))),
                                 fadd(a.z, fmul(h, fadd(b.z, c.z))),
                                 fadd(a.w, fmul(h, fadd(b.w, c.w)))));
    } else {
      const int n = static_cast<int>(dim - e0 < 4 ? dim - e0 : 4);
      for (int i = 0; i < n; ++i)
        out[off + i] = fadd(x[off + i], fmul(h, fadd(v1[off + i], v2[off + i])));
    }
  }
}

struct CombineOuts {
  float* p[kRowCombineMax];
};

__global__ void row_combine_kernel(const float* x, const float* y, int64_t rows, int64_t dim,
                                   const double* coef, int k, CombineOuts out) {
  const int64_t total = rows * dim;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = t / dim;
    const float xi = x[t], yi = y[t];
    for (int j = 0; j < k; ++j) {
      const float a = static_cast<float>(coef[(row * k + j) * 2]);
      const float b = static_cast<float>(coef[(row * k + j) * 2 + 1]);
      out.p[j][t] = fadd(fmul(a, xi), fmul(b, yi));
    }
  }
}

}  // namespace

void row_combine_cuda(const float* x, const float* y, int64_t rows, int64_t dim,
                      const double* coef, int k, float* const* out, void* stream) {
  static const char* fn = "row_combine_cuda";
  validate::rows_dim(fn, rows, dim);
  validate::require(k >= 1 && k <= kRowCombineMax, fn, "k must be in [1, 4]");
  if (rows == 0 || dim == 0) return;
  validate::require(x && y && coef && out, fn, "null pointer");
  CombineOuts o{};
  for (int j = 0; j < k; ++j) {
    validate::require(out[j] != nullptr, fn, "null pointer");
    o.p[j] = out[j];
  }
  row_combine_kernel<<<grid_for(rows * dim), kThreads, 0, as_stream(stream)>>>(x, y, rows, dim,
                                                                               coef, k, o);
  check_launch(fn);
}

void renoise_cuda(const float* x, int64_t rows, int64_t dim, NoisePath path,
                  const float* sigma_from, const float* sigma_to, uint64_t seed,
                  const int64_t* ids, int64_t step, float* out, void* stream) {
  static const char* fn = "renoise_cuda";
  const int p = validate::path(fn, static_cast<int>(path));
  validate::rows_dim(fn, rows, dim);
  if (rows == 0 || dim == 0) return;
  validate::require(sigma_from && sigma_to && x && out, fn, "null pointer");
  cudaStream_t st = as_stream(stream);
  DeviceTemp tmp(static_cast<size_t>(rows) * sizeof(float4), st, fn);
  float4* coef = tmp.as<float4>();
  renoise_coef_kernel<<<grid_for(rows, 128), 128, 0, st>>>(p, sigma_from, sigma_to, rows, coef);
  check_launch(fn);
  if (dim % 4 == 0 && aligned16(x) && aligned16(out))
    launch_noise_blocks(fn, rows, dim, seed, ids, step, RenoiseOp<true>{x, coef, dim, out}, st);
  else
    launch_noise_blocks(fn, rows, dim, seed, ids, step, RenoiseOp<false>{x, coef, dim, out}, st);
}

void euler_step_cuda(const float* x, const float* v, int64_t rows, int64_t dim,
                     const float* sigma_from, const float* sigma_to, float* out, void* stream) {
  static const char* fn = "euler_step_cuda";
  validate::rows_dim(fn, rows, dim);
  if (rows == 0 || dim == 0) return;
  validate::require(x && v && out && sigma_from && sigma_to, fn, "null pointer");
  const unsigned g = grid_for(rows * ((dim + 3) >> 2));
  if (dim % 4 == 0 && aligned16(x) && aligned16(v) && aligned16(out))
    euler_kernel<true><<<g, kThreads, 0, as_stream(stream)>>>(x, v, rows, dim, sigma_from,
                                                              sigma_to, out);
  else
    euler_kernel<false><<<g, kThreads, 0, as_stream(stream)>>>(x, v, rows, dim, sigma_from,
                                                               sigma_to, out);
  check_launch(fn);
}

void heun_combine_cuda(const float* x, const float* v1, const float* v2, int64_t rows,
                       int64_t dim, const float* sigma_from, const float* sigma_to, float* out,
                       void* stream) {
  static const char* fn = "heun_combine_cuda";
  validate::rows_dim(fn, rows, dim);
  if (rows == 0 || dim == 0) return;
  validate::require(x && v1 && v2 && out && sigma_from && sigma_to, fn, "null pointer");
  const unsigned g = grid_for(rows * ((dim + 3) >> 2));
  if (dim % 4 == 0 && aligned16(x) && aligned16(v1) && aligned16(v2) && aligned16(out))
    heun_kernel<true><<<g, kThreads, 0, as_stream(stream)>>>(x, v1, v2, rows, dim, sigma_from,
                                                             sigma_to, out);
  else
    heun_kernel<false><<<g, kThreads, 0, as_stream(stream)>>>(x, v1, v2, rows, dim, sigma_from,
                                                              sigma_to, out);
  check_launch(fn);
}

void ddim_step_cuda(const float* x0_hat, const float* eps_hat, int64_t rows, int64_t dim,
                    NoisePath path, const float* sigma_from, const float* sigma_to, float eta,
                    uint64_t seed, const int64_t* ids, int64_t step, float* out, float* out_std,
                    void* stream) {
  static const char* fn = "ddim_step_cuda";
  const int p = validate::path(fn, static_cast<int>(path));
  validate::rows_dim(fn, rows, dim);
  validate::eta(fn, eta);
  if (rows == 0) return;
  validate::require(sigma_from != nullptr && sigma_to != nullptr, fn, "sigma is null");
  if (dim > 0) validate::require(x0_hat && eps_hat && out, fn, "null pointer");
  cudaStream_t st = as_stream(stream);
  DeviceTemp tmp(static_cast<size_t>(rows) * sizeof(float4), st, fn);
  float4* coef = tmp.as<float4>();
  ddim_coef_kernel<<<grid_for(rows, 128), 128, 0, st>>>(p, sigma_from, sigma_to, eta, rows, coef,
                                                        out_std);
  check_launch(fn);
  if (dim == 0) return;
  if (dim % 4 == 0 && aligned16(x0_hat) && aligned16(eps_hat) && aligned16(out))
    launch_noise_blocks(fn, rows, dim, seed, ids, step,
                        DdimOp<true>{x0_hat, eps_hat, coef, dim, out}, st);
  else
    launch_noise_blocks(fn, rows, dim, seed, ids, step,
                        DdimOp<false>{x0_hat, eps_hat, coef, dim, out}, st);
}

}  // namespace kernels
}  // namespace ds
