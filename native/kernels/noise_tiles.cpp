// noise_tiles.cpp — CPU noise generation in tiles (the hot loops of every random op).
//
// Philox: explicit AVX-512 / AVX2 code picked once at run time (integer maths, so every path
// gives the same bits). Box–Muller: loops written to auto-vectorise (structure of arrays,
// branch-free maths from ds_math.h), cloned by GCC for x86-64-v4 / v3 / the baseline ISA; each
// clone computes the same IEEE operations (explicit FMAs, no contraction), so the results are
// identical whichever clone runs — and identical to the CUDA kernels.
// The element-wise noise ops (affine_noise_tile) on AVX-512 and AVX2 + FMA CPUs skip the tile:
// Philox, Box–Muller (avx512_noise.h / avx2_noise.h, the same operations by hand) and the op run
// in registers, 32 (16) elements at a time, while the next tile's rows are prefetched.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off", "no-math-errno")
#endif
#include "cpu_common.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(DS_NO_TARGET_CLONES)
#define DS_X86_DISPATCH 1
#define DS_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#include <immintrin.h>

#include <cstdlib>
#include <string>

#include "avx2_noise.h"
#include "avx512_noise.h"
#else
#define DS_X86_DISPATCH 0
#define DS_CLONES
#endif

namespace ds {
namespace kernels {
namespace cpu {

namespace {

// One Philox block per iteration: the reference, used for tails and the rare tile whose low
// counter word wraps.
void philox_scalar(uint32_t* r0, uint32_t* r1, uint32_t* r2, uint32_t* r3, uint64_t seed,
                   uint64_t id, uint64_t step, uint64_t block0, int64_t i0, int64_t nb) {
  for (int64_t i = i0; i < nb; ++i) {
    const detail::U32x4 r = detail::noise_block(seed, id, step, block0 + i);
    r0[i] = r.v0;
    r1[i] = r.v1;
    r2[i] = r.v2;
    r3[i] = r.v3;
  }
}

#if DS_X86_DISPATCH
// GCC 12 warns about the intrinsics' own _mm512_undefined_* placeholders (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// The counters of V vectors of 8 blocks starting at block lo0 + i (low word; the caller makes
// sure it cannot wrap), high word hi, sample c2, step c3.
template <int V>
__attribute__((target("avx512f"), always_inline)) inline void counters_avx512(
    __m512i* a, __m512i* b, __m512i* c, __m512i* d, uint32_t lo0, int64_t i, uint32_t hi,
    uint32_t c2, uint32_t c3) {
  const __m512i lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  for (int v = 0; v < V; ++v) {
    a[v] = _mm512_add_epi64(_mm512_set1_epi64(static_cast<int64_t>(lo0) + i + v * 8), lane);
    b[v] = _mm512_set1_epi64(hi);
    c[v] = _mm512_set1_epi64(c2);
    d[v] = _mm512_set1_epi64(c3);
  }
}

__attribute__((target("avx512f"))) int64_t philox_avx512(uint32_t* r0, uint32_t* r1,
                                                         uint32_t* r2, uint32_t* r3, uint32_t k0,
                                                         uint32_t k1, uint32_t lo0, uint32_t hi,
                                                         uint32_t c2, uint32_t c3, int64_t nb) {
  constexpr int V = 4, L = 8;  // vectors per iteration, blocks per vector
  avx512::PhiloxKeys keys;
  avx512::philox_keys(keys, k0, k1);
  int64_t i = 0;
  for (; i + V * L <= nb; i += V * L) {
    __m512i a[V], b[V], c[V], d[V];
    counters_avx512<V>(a, b, c, d, lo0, i, hi, c2, c3);
    avx512::philox_rounds<V>(a, b, c, d, keys);
    for (int v = 0; v < V; ++v) {
      const int64_t o = i + v * L;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(r0 + o), _mm512_cvtepi64_epi32(a[v]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(r1 + o), _mm512_cvtepi64_epi32(b[v]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(r2 + o), _mm512_cvtepi64_epi32(c[v]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(r3 + o), _mm512_cvtepi64_epi32(d[v]));
    }
  }
  return i;
}

// One noise-consuming element-wise op on 16 elements j .. j+15 of a tile.
template <int Form>
__attribute__((target("avx512f"), always_inline)) inline void affine16_avx512(
    const NoiseAffine& f, int64_t j, __m512 z, __m512 A, __m512 C, __m512 B) {
  if (Form == 0) {
    _mm512_storeu_ps(f.o + j, z);
  } else if (Form == 1) {
    const __m512 ax = _mm512_mul_ps(A, _mm512_loadu_ps(f.x + j));
    _mm512_storeu_ps(f.o + j, _mm512_add_ps(ax, _mm512_mul_ps(B, z)));
  } else {
    const __m512 ax = _mm512_mul_ps(A, _mm512_loadu_ps(f.x + j));
    const __m512 axcy = _mm512_add_ps(ax, _mm512_mul_ps(C, _mm512_loadu_ps(f.y + j)));
    _mm512_storeu_ps(f.o + j, _mm512_add_ps(axcy, _mm512_mul_ps(B, z)));
  }
}

// affine_noise_tile fused in registers: Philox, Box–Muller and the op, 32 elements per vector
// of 8 blocks, never storing the noise. Returns how many elements it did (a multiple of 32).
template <int Form>
__attribute__((target("avx512f"))) int64_t affine_avx512(const NoiseAffine& f, uint32_t k0,
                                                         uint32_t k1, uint32_t lo0, uint32_t hi,
                                                         uint32_t c2, uint32_t c3, int64_t n) {
  avx512::PhiloxKeys keys;
  avx512::philox_keys(keys, k0, k1);
  const __m512 A = _mm512_set1_ps(f.a), C = _mm512_set1_ps(f.c), B = _mm512_set1_ps(f.b);
  int64_t j = 0;
  constexpr int V = 4;  // independent vectors per iteration: hides the multiply latency
  for (; j + 32 * V <= n; j += 32 * V) {
    // Start loading the next tile (its rows may lie anywhere: parents are gathered), spread
    // over this tile's iterations so that the loads overlap the arithmetic.
    for (int l = 0; l < 32 * V; l += 16) {
      if (Form >= 1) _mm_prefetch(reinterpret_cast<const char*>(f.next_x + j + l), _MM_HINT_T0);
      if (Form == 2) _mm_prefetch(reinterpret_cast<const char*>(f.next_y + j + l), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(f.next_o + j + l), _MM_HINT_ET0);
    }
    __m512i a[V], b[V], c[V], d[V];
    counters_avx512<V>(a, b, c, d, lo0, j / 4, hi, c2, c3);
    avx512::philox_rounds<V>(a, b, c, d, keys);
    for (int v = 0; v < V; ++v) {
      __m512 lo, hi16;
      avx512::normals32(a[v], b[v], c[v], d[v], lo, hi16);
      affine16_avx512<Form>(f, j + 32 * v, lo, A, C, B);
      affine16_avx512<Form>(f, j + 32 * v + 16, hi16, A, C, B);
    }
  }
  for (; j + 32 <= n; j += 32) {
    __m512i a[1], b[1], c[1], d[1];
    counters_avx512<1>(a, b, c, d, lo0, j / 4, hi, c2, c3);
    avx512::philox_rounds<1>(a, b, c, d, keys);
    __m512 lo, hi16;
    avx512::normals32(a[0], b[0], c[0], d[0], lo, hi16);
    affine16_avx512<Form>(f, j, lo, A, C, B);
    affine16_avx512<Form>(f, j + 16, hi16, A, C, B);
  }
  return j;
}

#pragma GCC diagnostic pop

// The same in 256-bit vectors (4 blocks each); AVX2 has no 64→32 pack.
__attribute__((target("avx2"))) inline __m128i low_words(__m256i x) {
  return _mm256_castsi256_si128(
      _mm256_permute4x64_epi64(_mm256_shuffle_epi32(x, _MM_SHUFFLE(2, 0, 2, 0)), _MM_SHUFFLE(3, 1, 2, 0)));
}

template <int V>
__attribute__((target("avx2"), always_inline)) inline void counters_avx2(
    __m256i* a, __m256i* b, __m256i* c, __m256i* d, uint32_t lo0, int64_t i, uint32_t hi,
    uint32_t c2, uint32_t c3) {
  const __m256i lane = _mm256_set_epi64x(3, 2, 1, 0);
  for (int v = 0; v < V; ++v) {
    a[v] = _mm256_add_epi64(_mm256_set1_epi64x(static_cast<int64_t>(lo0) + i + v * 4), lane);
    b[v] = _mm256_set1_epi64x(hi);
    c[v] = _mm256_set1_epi64x(c2);
    d[v] = _mm256_set1_epi64x(c3);
  }
}

__attribute__((target("avx2"))) int64_t philox_avx2(uint32_t* r0, uint32_t* r1, uint32_t* r2,
                                                    uint32_t* r3, uint32_t k0, uint32_t k1,
                                                    uint32_t lo0, uint32_t hi, uint32_t c2,
                                                    uint32_t c3, int64_t nb) {
  constexpr int V = 4, L = 4;
  int64_t i = 0;
  for (; i + V * L <= nb; i += V * L) {
    __m256i a[V], b[V], c[V], d[V];
    counters_avx2<V>(a, b, c, d, lo0, i, hi, c2, c3);
    avx2::philox_rounds<V>(a, b, c, d, k0, k1);
    for (int v = 0; v < V; ++v) {
      const int64_t o = i + v * L;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(r0 + o), low_words(a[v]));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(r1 + o), low_words(b[v]));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(r2 + o), low_words(c[v]));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(r3 + o), low_words(d[v]));
    }
  }
  return i;
}

// affine16_avx512 / affine_avx512 in 256-bit vectors (8 elements per op, 16 per vector of 4
// blocks): the same operations, so the same bits.
template <int Form>
__attribute__((target("avx2,fma"), always_inline)) inline void affine8_avx2(
    const NoiseAffine& f, int64_t j, __m256 z, __m256 A, __m256 C, __m256 B) {
  if (Form == 0) {
    _mm256_storeu_ps(f.o + j, z);
  } else if (Form == 1) {
    const __m256 ax = _mm256_mul_ps(A, _mm256_loadu_ps(f.x + j));
    _mm256_storeu_ps(f.o + j, _mm256_add_ps(ax, _mm256_mul_ps(B, z)));
  } else {
    const __m256 ax = _mm256_mul_ps(A, _mm256_loadu_ps(f.x + j));
    const __m256 axcy = _mm256_add_ps(ax, _mm256_mul_ps(C, _mm256_loadu_ps(f.y + j)));
    _mm256_storeu_ps(f.o + j, _mm256_add_ps(axcy, _mm256_mul_ps(B, z)));
  }
}

template <int Form>
__attribute__((target("avx2,fma"))) int64_t affine_avx2(const NoiseAffine& f, uint32_t k0,
                                                        uint32_t k1, uint32_t lo0, uint32_t hi,
                                                        uint32_t c2, uint32_t c3, int64_t n) {
  const __m256 A = _mm256_set1_ps(f.a), C = _mm256_set1_ps(f.c), B = _mm256_set1_ps(f.b);
  int64_t j = 0;
  constexpr int V = 4;
  for (; j + 16 * V <= n; j += 16 * V) {
    for (int l = 0; l < 16 * V; l += 16) {
      if (Form >= 1) _mm_prefetch(reinterpret_cast<const char*>(f.next_x + j + l), _MM_HINT_T0);
      if (Form == 2) _mm_prefetch(reinterpret_cast<const char*>(f.next_y + j + l), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(f.next_o + j + l), _MM_HINT_ET0);
    }
    __m256i a[V], b[V], c[V], d[V];
    counters_avx2<V>(a, b, c, d, lo0, j / 4, hi, c2, c3);
    avx2::philox_rounds<V>(a, b, c, d, k0, k1);
    for (int v = 0; v < V; ++v) {
      __m256 lo, hi8;
      avx2::normals16(a[v], b[v], c[v], d[v], lo, hi8);
      affine8_avx2<Form>(f, j + 16 * v, lo, A, C, B);
      affine8_avx2<Form>(f, j + 16 * v + 8, hi8, A, C, B);
    }
  }
  for (; j + 16 <= n; j += 16) {
    __m256i a[1], b[1], c[1], d[1];
    counters_avx2<1>(a, b, c, d, lo0, j / 4, hi, c2, c3);
    avx2::philox_rounds<1>(a, b, c, d, k0, k1);
    __m256 lo, hi8;
    avx2::normals16(a[0], b[0], c[0], d[0], lo, hi8);
    affine8_avx2<Form>(f, j, lo, A, C, B);
    affine8_avx2<Form>(f, j + 8, hi8, A, C, B);
  }
  return j;
}

using PhiloxSimd = int64_t (*)(uint32_t*, uint32_t*, uint32_t*, uint32_t*, uint32_t, uint32_t,
                               uint32_t, uint32_t, uint32_t, uint32_t, int64_t);

enum class Isa { kScalar, kAvx2, kAvx512 };

// The widest path this CPU has; DS_KERNELS_ISA=avx2|scalar caps it (the kernel tests check that
// every path gives the same bits).
Isa pick_isa() {
  __builtin_cpu_init();
  const char* cap = std::getenv("DS_KERNELS_ISA");
  const std::string isa = cap ? cap : "";
  if (isa == "scalar") return Isa::kScalar;
  if (isa != "avx2" && __builtin_cpu_supports("avx512f")) return Isa::kAvx512;
  if (__builtin_cpu_supports("avx2")) return Isa::kAvx2;
  return Isa::kScalar;
}

const Isa kIsa = pick_isa();
// The fused AVX2 noise ops use FMAs too (every AVX2 CPU but a few early ones has them).
const bool kFusedAvx2 = kIsa == Isa::kAvx2 && __builtin_cpu_supports("fma");
const PhiloxSimd kPhiloxSimd =
    kIsa == Isa::kAvx512 ? philox_avx512 : kIsa == Isa::kAvx2 ? philox_avx2 : nullptr;

// The SIMD paths add the block offset to the low counter word only: usable when it cannot wrap.
inline bool no_wrap(uint64_t block0, int64_t nb) {
  return static_cast<uint64_t>(static_cast<uint32_t>(block0)) + static_cast<uint64_t>(nb) <= (1ull << 32);
}
#endif

// Box–Muller on lane pairs (0,1) and (2,3) of nb blocks, written out in element order.
DS_CLONES void box_muller_tile(float* __restrict buf, const uint32_t* __restrict r0,
                               const uint32_t* __restrict r1, const uint32_t* __restrict r2,
                               const uint32_t* __restrict r3, int64_t nb) {
  alignas(64) float z0[kTileBlocks], z1[kTileBlocks], z2[kTileBlocks], z3[kTileBlocks];
  for (int64_t i = 0; i < nb; ++i) {
    detail::box_muller(r0[i], r1[i], z0[i], z1[i]);
    detail::box_muller(r2[i], r3[i], z2[i], z3[i]);
  }
  for (int64_t i = 0; i < nb; ++i) {
    buf[4 * i + 0] = z0[i];
    buf[4 * i + 1] = z1[i];
    buf[4 * i + 2] = z2[i];
    buf[4 * i + 3] = z3[i];
  }
}

DS_CLONES void uniform_of_tile(float* __restrict buf, const uint32_t* __restrict r0,
                               const uint32_t* __restrict r1, const uint32_t* __restrict r2,
                               const uint32_t* __restrict r3, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    buf[4 * i + 0] = detail::uniform_open0(r0[i]);
    buf[4 * i + 1] = detail::uniform_open0(r1[i]);
    buf[4 * i + 2] = detail::uniform_open0(r2[i]);
    buf[4 * i + 3] = detail::uniform_open0(r3[i]);
  }
}

}  // namespace

void philox_tile(uint32_t* r0, uint32_t* r1, uint32_t* r2, uint32_t* r3, uint64_t seed,
                 uint64_t id, uint64_t step, uint64_t block0, int64_t nb) {
  int64_t done = 0;
#if DS_X86_DISPATCH
  if (kPhiloxSimd && no_wrap(block0, nb))
    done = kPhiloxSimd(r0, r1, r2, r3, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                       static_cast<uint32_t>(block0), static_cast<uint32_t>(block0 >> 32),
                       static_cast<uint32_t>(id), static_cast<uint32_t>(step), nb);
#endif
  philox_scalar(r0, r1, r2, r3, seed, id, step, block0, done, nb);
}

void normal_tile(float* buf, uint64_t seed, uint64_t id, uint64_t step, int64_t e0, int64_t n) {
  const int64_t nb = (n + 3) / 4;
  alignas(64) uint32_t r0[kTileBlocks], r1[kTileBlocks], r2[kTileBlocks], r3[kTileBlocks];
  philox_tile(r0, r1, r2, r3, seed, id, step, static_cast<uint64_t>(e0) / 4, nb);
  box_muller_tile(buf, r0, r1, r2, r3, nb);
}

void uniform_tile(float* buf, uint64_t seed, uint64_t id, uint64_t step, int64_t e0, int64_t n) {
  const int64_t nb = (n + 3) / 4;
  alignas(64) uint32_t r0[kTileBlocks], r1[kTileBlocks], r2[kTileBlocks], r3[kTileBlocks];
  philox_tile(r0, r1, r2, r3, seed, id, step, static_cast<uint64_t>(e0) / 4, nb);
  uniform_of_tile(buf, r0, r1, r2, r3, nb);
}

void affine_noise_tile(const NoiseAffine& f, uint64_t seed, uint64_t id, uint64_t step, int64_t e0,
                       int64_t n) {
  const int form = f.x == nullptr ? 0 : f.y == nullptr ? 1 : 2;
  int64_t done = 0;
#if DS_X86_DISPATCH
  const uint64_t block0 = static_cast<uint64_t>(e0) / 4;
  if ((kIsa == Isa::kAvx512 || kFusedAvx2) && no_wrap(block0, (n + 3) / 4)) {
    NoiseAffine g = f;
    if (!g.next_o) {  // no next tile: prefetch this one (already loaded, harmless)
      g.next_o = f.o;
      g.next_x = f.x;
      g.next_y = f.y;
    }
    const uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
    const uint32_t lo0 = static_cast<uint32_t>(block0), hi = static_cast<uint32_t>(block0 >> 32);
    const uint32_t c2 = static_cast<uint32_t>(id), c3 = static_cast<uint32_t>(step);
    if (kIsa == Isa::kAvx512)
      done = form == 0   ? affine_avx512<0>(g, k0, k1, lo0, hi, c2, c3, n)
             : form == 1 ? affine_avx512<1>(g, k0, k1, lo0, hi, c2, c3, n)
                         : affine_avx512<2>(g, k0, k1, lo0, hi, c2, c3, n);
    else
      done = form == 0   ? affine_avx2<0>(g, k0, k1, lo0, hi, c2, c3, n)
             : form == 1 ? affine_avx2<1>(g, k0, k1, lo0, hi, c2, c3, n)
                         : affine_avx2<2>(g, k0, k1, lo0, hi, c2, c3, n);
  }
#endif
  if (done == n) return;
  const int64_t m = n - done;  // done % 4 == 0, m <= kTile
  if (done == 0 && f.next_o) {
    prefetch_floats(f.next_o, n, true);
    if (f.next_x) prefetch_floats(f.next_x, n, false);
    if (f.next_y) prefetch_floats(f.next_y, n, false);
  }
  alignas(64) float z[kTile];
  normal_tile(z, seed, id, step, e0 + done, m);
  float* __restrict o = f.o + done;
  if (form == 0) {
    for (int64_t i = 0; i < m; ++i) o[i] = z[i];
  } else if (form == 1) {
    const float* __restrict x = f.x + done;
    for (int64_t i = 0; i < m; ++i) o[i] = f.a * x[i] + f.b * z[i];
  } else {
    const float* __restrict x = f.x + done;
    const float* __restrict y = f.y + done;
    for (int64_t i = 0; i < m; ++i) o[i] = (f.a * x[i] + f.c * y[i]) + f.b * z[i];
  }
}

}  // namespace cpu
}  // namespace kernels
}  // namespace ds
