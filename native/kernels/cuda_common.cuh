// cuda_common.cuh — internal helpers of the CUDA kernels (not part of the public API).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "ds_math.h"
#include "ds_validate.h"
#include "kernels.h"

namespace ds {
namespace kernels {
namespace cuda {

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

[[noreturn]] inline void cuda_fail(const char* fn, const char* what, cudaError_t e) {
  throw std::runtime_error(std::string("ds::kernels::") + fn + ": " + what + ": " +
                           cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}
inline void check(cudaError_t e, const char* fn, const char* what) {
  if (e != cudaSuccess) cuda_fail(fn, what, e);
}
// After a launch: configuration errors and earlier sticky errors.
inline void check_launch(const char* fn) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) cuda_fail(fn, "kernel launch", e);
}

// Stream-ordered temporary device memory, freed (stream-ordered) on destruction.
class DeviceTemp {
 public:
  DeviceTemp(size_t bytes, cudaStream_t s, const char* fn) : stream_(s) {
    if (bytes == 0) bytes = 16;
    check(cudaMallocAsync(&ptr_, bytes, s), fn, "cudaMallocAsync");
  }
  ~DeviceTemp() {
    if (ptr_) cudaFreeAsync(ptr_, stream_);
  }
  DeviceTemp(const DeviceTemp&) = delete;
  DeviceTemp& operator=(const DeviceTemp&) = delete;
  template <class T>
  T* as(size_t byte_offset = 0) const {
    return reinterpret_cast<T*>(static_cast<char*>(ptr_) + byte_offset);
  }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_;
};

constexpr int kThreads = 256;

// Grid for a grid-stride loop over `work` items.
inline unsigned grid_for(int64_t work, int threads = kThreads) {
  int64_t b = (work + threads - 1) / threads;
  if (b < 1) b = 1;
  const int64_t cap = int64_t(1) << 20;
  return static_cast<unsigned>(b < cap ? b : cap);
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

__device__ __forceinline__ uint64_t row_id(const int64_t* ids, int64_t r) {
  return ids ? static_cast<uint64_t>(ids[r]) : static_cast<uint64_t>(r);
}

__device__ __forceinline__ float4 ld4(const float* p) {
  return *reinterpret_cast<const float4*>(p);
}
__device__ __forceinline__ void st4(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }

// out[row, e] = c.x·x[row, e] + c.y·ε(row, e) with c = coef[row] (float2, or float4 of which .x and
// .y are used): the write pass of sphere neighbours and of re-noising. Vec: 4 aligned elements.
template <bool Vec, class Coef>
struct ScaledNoiseOp {
  const float* x;
  const Coef* coef;
  int64_t dim;
  float* out;
  template <class Gen>
  __device__ void operator()(int64_t row, int64_t e0, int n, Gen&& gen) const {
    using detail::fadd;
    using detail::fmul;
    const Coef c = coef[row];
    const float* xr = x + row * dim + e0;
    float* o = out + row * dim + e0;
    float z[4];
    gen(z);
    if (Vec) {
      const float4 xv = ld4(xr);
      st4(o, make_float4(fadd(fmul(c.x, xv.x), fmul(c.y, z[0])),
                         fadd(fmul(c.x, xv.y), fmul(c.y, z[1])),
                         fadd(fmul(c.x, xv.z), fmul(c.y, z[2])),
                         fadd(fmul(c.x, xv.w), fmul(c.y, z[3]))));
    } else {
      for (int i = 0; i < n; ++i) o[i] = fadd(fmul(c.x, xr[i]), fmul(c.y, z[i]));
    }
  }
};

// Grid-stride loop over (row, Philox block) pairs; calls op(row, e0, n, z[4]) where z holds the
// normals of elements e0..e0+3 of that row's sample (n = valid count, 1..4). If NOISE is false,
// z is not computed (zeros) — used by rows that need no noise.
template <class Op>
__global__ void noise_blocks_kernel(int64_t rows, int64_t dim, uint64_t seed, const int64_t* ids,
                                    uint64_t step, Op op) {
  const int64_t nb = (dim + 3) >> 2;
  const int64_t total = rows * nb;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = t / nb;
    const int64_t blk = t - row * nb;
    const int64_t e0 = blk << 2;
    const int n = static_cast<int>(dim - e0 < 4 ? dim - e0 : 4);
    op(row, e0, n, [&](float (&z)[4]) {
      const detail::U32x4 r =
          detail::noise_block(seed, row_id(ids, row), step, static_cast<uint64_t>(blk));
      detail::normal4(r, z[0], z[1], z[2], z[3]);
    });
  }
}

template <class Op>
inline void launch_noise_blocks(const char* fn, int64_t rows, int64_t dim, uint64_t seed,
                                const int64_t* ids, int64_t step, const Op& op, void* stream) {
  if (rows <= 0 || dim <= 0) return;
  const int64_t total = rows * ((dim + 3) >> 2);
  noise_blocks_kernel<<<grid_for(total), kThreads, 0, as_stream(stream)>>>(
      rows, dim, seed, ids, static_cast<uint64_t>(step), op);
  check_launch(fn);
}

}  // namespace cuda
}  // namespace kernels
}  // namespace ds
