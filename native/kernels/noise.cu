// noise.cu — CUDA: fill_normal, fill_uniform, mutate_gaussian, mutate_additive, sphere_neighbours.
#include "cuda_common.cuh"

namespace ds {
namespace kernels {

using namespace cuda;
using detail::fadd;
using detail::fmul;

namespace {

constexpr float kNaNf = __builtin_nanf("");

// --- fill -------------------------------------------------------------------------------------
template <bool Vec>
struct FillNormalOp {
  float* out;
  int64_t dim;
  template <class Gen>
  __device__ void operator()(int64_t row, int64_t e0, int n, Gen&& gen) const {
    float z[4];
    gen(z);
    float* o = out + row * dim + e0;
    if (Vec) {
      st4(o, make_float4(z[0], z[1], z[2], z[3]));
    } else {
      for (int i = 0; i < n; ++i) o[i] = z[i];
    }
  }
};

__global__ void fill_uniform_kernel(float* out, int64_t rows, int64_t dim, uint64_t seed,
                                    const int64_t* ids, uint64_t step) {
  const int64_t nb = (dim + 3) >> 2;
  const int64_t total = rows * nb;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = t / nb;
    const int64_t blk = t - row * nb;
    const int64_t e0 = blk << 2;
    const int n = static_cast<int>(dim - e0 < 4 ? dim - e0 : 4);
    const detail::U32x4 r = detail::noise_block(seed, row_id(ids, row), step, blk);
    const float u[4] = {detail::uniform_open0(r.v0), detail::uniform_open0(r.v1),
                        detail::uniform_open0(r.v2), detail::uniform_open0(r.v3)};
    float* o = out + row * dim + e0;
    for (int i = 0; i < n; ++i) o[i] = u[i];
  }
}

// --- mutations --------------------------------------------------------------------------------
// out = a·p + b·z (Gaussian) with a, b scalars.
template <bool Vec>
struct MutateGaussianOp {
  const float* parents;
  const int64_t* idx;
  int64_t n_parents, dim;
  float a, b;
  float* out;
  template <class Gen>
  __device__ void operator()(int64_t k, int64_t e0, int n, Gen&& gen) const {
    float* o = out + k * dim + e0;
    const int64_t pi = idx[k];
    if (pi < 0 || pi >= n_parents) {
      for (int i = 0; i < n; ++i) o[i] = kNaNf;
      return;
    }
    const float* p = parents + pi * dim + e0;
    float z[4];
    gen(z);
    if (Vec) {
      const float4 pv = ld4(p);
      st4(o, make_float4(fadd(fmul(a, pv.x), fmul(b, z[0])), fadd(fmul(a, pv.y), fmul(b, z[1])),
                         fadd(fmul(a, pv.z), fmul(b, z[2])), fadd(fmul(a, pv.w), fmul(b, z[3]))));
    } else {
      for (int i = 0; i < n; ++i) o[i] = fadd(fmul(a, p[i]), fmul(b, z[i]));
    }
  }
};

// out = p + s[k]·z
template <bool Vec>
struct MutateAdditiveOp {
  const float* parents;
  const int64_t* idx;
  int64_t n_parents, dim;
  const float* s;
  float* out;
  template <class Gen>
  __device__ void operator()(int64_t k, int64_t e0, int n, Gen&& gen) const {
    float* o = out + k * dim + e0;
    const int64_t pi = idx[k];
    if (pi < 0 || pi >= n_parents) {
      for (int i = 0; i < n; ++i) o[i] = kNaNf;
      return;
    }
    const float* p = parents + pi * dim + e0;
    const float sk = s[k];
    float z[4];
    gen(z);
    if (Vec) {
      const float4 pv = ld4(p);
      st4(o, make_float4(fadd(pv.x, fmul(sk, z[0])), fadd(pv.y, fmul(sk, z[1])),
                         fadd(pv.z, fmul(sk, z[2])), fadd(pv.w, fmul(sk, z[3]))));
    } else {
      for (int i = 0; i < n; ++i) o[i] = fadd(p[i], fmul(sk, z[i]));
    }
  }
};

// --- sphere -----------------------------------------------------------------------------------
constexpr int kSphereThreads = 256;
constexpr int64_t kSphereChunk = 4096;  // elements per partial-sum block

__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// partial[(row * nchunks + chunk) * 3 + {0,1,2}] = Σ x², Σ x·v, Σ v² over the chunk.
__global__ void sphere_partials_kernel(const float* x, int64_t rows, int64_t dim, int64_t nchunks,
                                       uint64_t seed, const int64_t* ids, uint64_t step,
                                       double* partial) {
  __shared__ double sh[3][kSphereThreads / 32];
  for (int64_t row = blockIdx.y; row < rows; row += gridDim.y) {
    for (int64_t chunk = blockIdx.x; chunk < nchunks; chunk += gridDim.x) {
      const int64_t c0 = chunk * kSphereChunk;
      const int64_t c1 = c0 + kSphereChunk < dim ? c0 + kSphereChunk : dim;
      const uint64_t id = row_id(ids, row);
      double xx = 0.0, xv = 0.0, vv = 0.0;
      for (int64_t e0 = c0 + 4 * threadIdx.x; e0 < c1; e0 += 4 * kSphereThreads) {
        float z[4];
        detail::normal4(detail::noise_block(seed, id, step, static_cast<uint64_t>(e0 >> 2)), z[0],
                        z[1], z[2], z[3]);
        const int n = static_cast<int>(c1 - e0 < 4 ? c1 - e0 : 4);
        const float* xr = x + row * dim + e0;
        for (int i = 0; i < n; ++i) {
          const double xe = xr[i], ve = z[i];
          xx += xe * xe;
          xv += xe * ve;
          vv += ve * ve;
        }
      }
      xx = warp_sum(xx);
      xv = warp_sum(xv);
      vv = warp_sum(vv);
      const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
      if (lane == 0) {
        sh[0][warp] = xx;
        sh[1][warp] = xv;
        sh[2][warp] = vv;
      }
      __syncthreads();
      if (threadIdx.x == 0) {
        double a = 0, b = 0, c = 0;
        for (int w = 0; w < kSphereThreads / 32; ++w) {
          a += sh[0][w];
          b += sh[1][w];
          c += sh[2][w];
        }
        double* p = partial + (row * nchunks + chunk) * 3;
        p[0] = a;
        p[1] = b;
        p[2] = c;
      }
      __syncthreads();
    }
  }
}

// coef[row] = (A, C) so that out = A·x + C·v. Mirrors sphere_coef in noise.cpp.
__global__ void sphere_coef_kernel(const double* partial, int64_t rows, int64_t nchunks, float tau,
                                   float2* coef) {
  for (int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; row < rows;
       row += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double xx = 0, xv = 0, vv = 0;
    for (int64_t c = 0; c < nchunks; ++c) {
      const double* p = partial + (row * nchunks + c) * 3;
      xx += p[0];
      xv += p[1];
      vv += p[2];
    }
    float2 r;
    if (!(xx > 0.0)) {
      r = make_float2(0.0f, 0.0f);
    } else {
      const double t = tau;
      const double one_m = 1.0 - t * t;
      const double st = sqrt(one_m > 0.0 ? one_m : 0.0);
      const double wn2 = vv - xv * xv / xx;
      if (!(wn2 > 0.0) || st == 0.0) {
        r = make_float2(static_cast<float>(t), 0.0f);
      } else {
        const double c = sqrt(xx) * st / sqrt(wn2);
        const double a = t - c * xv / xx;
        r = make_float2(static_cast<float>(a), static_cast<float>(c));
      }
    }
    coef[row] = r;
  }
}

// Writes coef[row].x·x + coef[row].y·ε (ScaledNoiseOp in cuda_common.cuh).
template <bool Vec>
using SphereWriteOp = ScaledNoiseOp<Vec, float2>;

}  // namespace

// ------------------------------------------------------------------------------------------------
void fill_normal_cuda(float* out, int64_t rows, int64_t dim, uint64_t seed,
                      const int64_t* sample_ids, int64_t step, void* stream) {
  static const char* fn = "fill_normal_cuda";
  validate::rows_dim(fn, rows, dim);
  if (rows == 0 || dim == 0) return;
  validate::require(out != nullptr, fn, "out is null");
  if (dim % 4 == 0 && aligned16(out))
    launch_noise_blocks(fn, rows, dim, seed, sample_ids, step, FillNormalOp<true>{out, dim},
                        stream);
  else
    launch_noise_blocks(fn, rows, dim, seed, sample_ids, step, FillNormalOp<false>{out, dim},
                        stream);
}

void fill_uniform_cuda(float* out, int64_t rows, int64_t dim, uint64_t seed,
                       const int64_t* sample_ids, int64_t step, void* stream) {
  static const char* fn = "fill_uniform_cuda";
  validate::rows_dim(fn, rows, dim);
  if (rows == 0 || dim == 0) return;
  validate::require(out != nullptr, fn, "out is null");
  fill_uniform_kernel<<<grid_for(rows * ((dim + 3) >> 2)), kThreads, 0, as_stream(stream)>>>(
      out, rows, dim, seed, sample_ids, static_cast<uint64_t>(step));
  check_launch(fn);
}

void mutate_gaussian_cuda(const float* parents, int64_t n_parents, const int64_t* idx,
                          int64_t n_children, int64_t dim, float beta, uint64_t seed,
                          const int64_t* child_ids, int64_t step, float* out, void* stream) {
  static const char* fn = "mutate_gaussian_cuda";
  validate::beta(fn, beta);
  validate::mutation(fn, parents, n_parents, idx, n_children, dim, out);
  if (n_children == 0 || dim == 0) return;
  const float a = detail::fsqrt(detail::fsub(1.0f, detail::fmul(beta, beta)));
  if (dim % 4 == 0 && aligned16(parents) && aligned16(out))
    launch_noise_blocks(fn, n_children, dim, seed, child_ids, step,
                        MutateGaussianOp<true>{parents, idx, n_parents, dim, a, beta, out}, stream);
  else
    launch_noise_blocks(fn, n_children, dim, seed, child_ids, step,
                        MutateGaussianOp<false>{parents, idx, n_parents, dim, a, beta, out},
                        stream);
}

void mutate_additive_cuda(const float* parents, int64_t n_parents, const int64_t* idx,
                          int64_t n_children, int64_t dim, const float* s, uint64_t seed,
                          const int64_t* child_ids, int64_t step, float* out, void* stream) {
  static const char* fn = "mutate_additive_cuda";
  validate::mutation(fn, parents, n_parents, idx, n_children, dim, out);
  if (n_children == 0 || dim == 0) return;
  validate::require(s != nullptr, fn, "s is null");
  if (dim % 4 == 0 && aligned16(parents) && aligned16(out))
    launch_noise_blocks(fn, n_children, dim, seed, child_ids, step,
                        MutateAdditiveOp<true>{parents, idx, n_parents, dim, s, out}, stream);
  else
    launch_noise_blocks(fn, n_children, dim, seed, child_ids, step,
                        MutateAdditiveOp<false>{parents, idx, n_parents, dim, s, out}, stream);
}

void sphere_neighbours_cuda(const float* x, int64_t rows, int64_t dim, float tau, uint64_t seed,
                            const int64_t* ids, int64_t step, float* out, void* stream) {
  static const char* fn = "sphere_neighbours_cuda";
  validate::rows_dim(fn, rows, dim);
  validate::tau(fn, tau);
  if (rows == 0) return;
  validate::require(dim >= 1, fn, "dim must be >= 1");
  validate::require(x != nullptr && out != nullptr, fn, "x/out is null");
  cudaStream_t st = as_stream(stream);
  const int64_t nchunks = (dim + kSphereChunk - 1) / kSphereChunk;
  const size_t part_bytes = static_cast<size_t>(rows * nchunks * 3) * sizeof(double);
  DeviceTemp tmp(part_bytes + static_cast<size_t>(rows) * sizeof(float2), st, fn);
  double* partial = tmp.as<double>();
  float2* coef = tmp.as<float2>(part_bytes);
  const dim3 g1(static_cast<unsigned>(nchunks < 65535 ? nchunks : 65535),
                static_cast<unsigned>(rows < 65535 ? rows : 65535));
  sphere_partials_kernel<<<g1, kSphereThreads, 0, st>>>(x, rows, dim, nchunks, seed, ids,
                                                        static_cast<uint64_t>(step), partial);
  check_launch(fn);
  sphere_coef_kernel<<<grid_for(rows, 128), 128, 0, st>>>(partial, rows, nchunks, tau, coef);
  check_launch(fn);
  if (dim % 4 == 0 && aligned16(x) && aligned16(out))
    launch_noise_blocks(fn, rows, dim, seed, ids, step, SphereWriteOp<true>{x, coef, dim, out},
                        stream);
  else
    launch_noise_blocks(fn, rows, dim, seed, ids, step, SphereWriteOp<false>{x, coef, dim, out},
                        stream);
}

}  // namespace kernels
}  // namespace ds
