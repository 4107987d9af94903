// ds_validate.h — host-side argument checks shared by the CPU (.cpp) and CUDA (.cu) entry points.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace ds {
namespace kernels {
namespace validate {

[[noreturn]] inline void fail(const char* fn, const std::string& msg) {
  throw std::invalid_argument(std::string("ds::kernels::") + fn + ": " + msg);
}
inline void require(bool ok, const char* fn, const char* msg) {
  if (!ok) fail(fn, msg);
}
inline void rows_dim(const char* fn, int64_t rows, int64_t dim) {
  require(rows >= 0, fn, "rows must be >= 0");
  require(dim >= 0, fn, "dim must be >= 0");
  require(dim < (int64_t(1) << 34), fn, "dim must be < 2^34");
}
inline int path(const char* fn, int p) {
  require(p == 0 || p == 1, fn, "path must be 0 (rectified_flow) or 1 (vp)");
  return p;
}
inline void beta(const char* fn, float b) {
  require(b >= 0.0f && b <= 1.0f, fn, "beta must be in [0, 1]");
}
inline void tau(const char* fn, float t) {
  require(t >= -1.0f && t <= 1.0f, fn, "tau must be in [-1, 1]");
}
inline void eta(const char* fn, float e) {
  require(e >= 0.0f && e <= 3.0e38f, fn, "eta must be finite and >= 0");
}
// Mutation sizes (not the index contents).
inline void mutation(const char* fn, const void* parents, int64_t n_parents, const void* idx,
                     int64_t n_children, int64_t dim, const void* out) {
  require(n_parents >= 0, fn, "n_parents must be >= 0");
  rows_dim(fn, n_children, dim);
  if (n_children == 0 || dim == 0) return;
  require(idx != nullptr && out != nullptr, fn, "idx/out is null");
  require(n_parents > 0 && parents != nullptr, fn, "no parents");
}
inline void topk(const char* fn, int64_t S, int64_t L, int64_t k) {
  require(S >= 0 && L >= 0, fn, "S and L must be >= 0");
  require(k >= 0 && k <= L, fn, "need 0 <= k <= L");
  require(L < (int64_t(1) << 32), fn, "L must be < 2^32");
}
inline void tournament(const char* fn, int64_t P, int64_t n_winners, int64_t size) {
  require(n_winners >= 0, fn, "n_winners must be >= 0");
  require(size >= 1 && size < (int64_t(1) << 31), fn, "tournament_size must be in [1, 2^31)");
  require(P >= 0 && P <= (int64_t(1) << 32), fn, "P must be in [0, 2^32]");
  if (n_winners > 0) require(P >= 1, fn, "P must be >= 1");
}
inline void resample(const char* fn, const void* log_w, int64_t n, int64_t n_out,
                     const void* out_idx) {
  require(n >= 1, fn, "n must be >= 1");
  require(n_out >= 1, fn, "n_out must be >= 1");
  require(log_w && out_idx, fn, "null pointer");
}

}  // namespace validate
}  // namespace kernels
}  // namespace ds
