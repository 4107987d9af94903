// Why a CPU allocator of our own: c10 puts every buffer on glibc's heap with posix_memalign.
// There, a freed large buffer sits between V8's small allocations and is too small for the next
// aligned request of the same size, so the heap grows by every disposed tensor (4.5 GB over 20k
// cycles). A low fixed M_MMAP_THRESHOLD fixed that but made every activation of a forward a fresh
// mmap, page-faulted and zeroed again: 5-6x slower forwards than PyTorch. Here buffers of 128 KiB
// and up live on their own mappings, never on the heap, and freed ones are kept by size for
// reuse (up to kCacheCap), so a forward reuses the pages of the last one. Sizes are rounded up
// to size classes (4 per power of two) and a request takes the smallest cached buffer up to
// twice its size, so batches of varying row counts — the engine merges the rows of concurrent
// searches — reuse each other's buffers instead of faulting in fresh pages; a full cache evicts
// its oldest buffers, so it follows the sizes in use. The stream workers call
// releaseCachedMemory() when the whole process has been idle, so an idle process holds no cache.
#include "allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <sys/mman.h>

#include <list>
#include <map>
#include <mutex>
#include <vector>
#include <new>
#include <unordered_map>
#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace ds {
namespace {

constexpr size_t kMinMapped = 128 * 1024;    // smaller buffers stay on glibc's heap
constexpr size_t kCacheCap = 256u << 20;     // free mapped bytes kept for reuse
constexpr size_t kPage = 4096;

class CachingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) const override {
    void* p = n < kMinMapped ? c10::alloc_cpu(n) : mapped(n);
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  static void release(void* p) {
    if (!p) return;
    std::vector<std::pair<void*, size_t>> evicted;
    {
      std::unique_lock<std::mutex> lock(mu());
      auto it = live().find(p);
      if (it == live().end()) {
        lock.unlock();
        c10::free_cpu(p);  // a small buffer, or one from c10's allocator before ours was installed
        return;
      }
      size_t size = it->second;
      live().erase(it);
      if (size > kCacheCap) {
        evicted.emplace_back(p, size);
      } else {
        // Oldest first out until this one fits: the cache follows the sizes in use.
        while (cached() + size > kCacheCap && !order().empty()) evicted.push_back(take(order().begin()));
        order().emplace_back(p, size);
        pool().emplace(size, std::prev(order().end()));
        cached() += size;
      }
    }
    for (auto& [q, n] : evicted) munmap(q, n);
  }

  static void drain() {
    std::list<std::pair<void*, size_t>> out;
    {
      std::lock_guard<std::mutex> lock(mu());
      out.swap(order());
      pool().clear();
      cached() = 0;
    }
    for (auto& [p, size] : out) munmap(p, size);
  }

  using Order = std::list<std::pair<void*, size_t>>;
  static std::mutex& mu() { static std::mutex m; return m; }
  static std::unordered_map<void*, size_t>& live() { static std::unordered_map<void*, size_t> m; return m; }
  // Free buffers in the order they were freed, and by size for lookup.
  static Order& order() { static Order o; return o; }
  static std::multimap<size_t, Order::iterator>& pool() { static std::multimap<size_t, Order::iterator> m; return m; }
  static size_t& cached() { static size_t n = 0; return n; }

  // Removes a cached buffer from both indexes (under mu()); returns it.
  static std::pair<void*, size_t> take(Order::iterator at) {
    auto range = pool().equal_range(at->second);
    for (auto it = range.first; it != range.second; ++it)
      if (it->second == at) {
        pool().erase(it);
        break;
      }
    auto out = *at;
    order().erase(at);
    cached() -= out.second;
    return out;
  }

  // The size class of a request: pages, then 4 classes per power of two (at most 25 % unused).
  static size_t sizeClass(size_t n) {
    size_t size = (n + kPage - 1) / kPage * kPage;
    size_t top = size_t{1} << (63 - __builtin_clzll(size));
    size_t step = top >= 4 * kPage ? top / 4 : kPage;
    return (size + step - 1) / step * step;
  }

 private:
  static void* mapped(size_t n) {
    size_t size = sizeClass(n);
    {
      std::lock_guard<std::mutex> lock(mu());
      // Best fit, up to twice the size: a buffer of a larger batch serves a smaller one.
      auto it = pool().lower_bound(size);
      if (it != pool().end() && it->first <= 2 * size) {
        auto [p, got] = take(it->second);
        live().emplace(p, got);
        return p;
      }
    }
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      drain();  // give the cache back and try once more
      p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
    }
    std::lock_guard<std::mutex> lock(mu());
    live().emplace(p, size);
    return p;
  }
};

CachingCpuAllocator g_allocator;

}  // namespace

void installCpuAllocator() {
  static std::once_flag once;
  // Priority 1 outranks c10's default CPU allocator (registered at 0).
  std::call_once(once, [] { c10::SetAllocator(c10::DeviceType::CPU, &g_allocator, 1); });
}

void releaseCachedMemory() {
  CachingCpuAllocator::drain();
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

size_t cachedBytes() {
  std::lock_guard<std::mutex> lock(CachingCpuAllocator::mu());
  return CachingCpuAllocator::cached();
}

}  // namespace ds
