// threads.cpp — thread-count control of the CPU kernels.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off", "no-math-errno")
#endif
#include <omp.h>

#include <atomic>

#include "kernels.h"

namespace ds {
namespace kernels {

namespace {
std::atomic<int> g_num_threads{0};  // 0 = default
}  // namespace

void set_num_threads(int n) { g_num_threads.store(n > 0 ? n : 0, std::memory_order_relaxed); }

int get_num_threads() {
  const int n = g_num_threads.load(std::memory_order_relaxed);
  if (n > 0) return n;
  const int d = omp_get_max_threads();
  return d > 0 ? d : 1;
}

}  // namespace kernels
}  // namespace ds
