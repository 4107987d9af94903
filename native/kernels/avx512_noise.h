// avx512_noise.h — AVX-512 building blocks of the CPU noise (included by noise_tiles.cpp only).
//
// The same integer and IEEE operations as ds_math.h's philox4x32_10 / box_muller, in 512-bit
// registers, so every result is bitwise the scalar formula's (kernels_test checks this). Only
// functions with the avx512f target attribute may call these; noise_tiles.cpp calls them only
// after checking the CPU.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "ds_math.h"
#include "noise_poly.h"

#define DS_AVX512 __attribute__((target("avx512f"), always_inline)) static inline

namespace ds {
namespace kernels {
namespace cpu {
namespace avx512 {

// The per-round keys of one seed, broadcast to 64-bit lanes.
struct PhiloxKeys {
  __m512i k0[10], k1[10];
};

DS_AVX512 void philox_keys(PhiloxKeys& k, uint32_t key0, uint32_t key1) {
  for (int r = 0; r < 10; ++r) {
    k.k0[r] = _mm512_set1_epi64(static_cast<uint32_t>(key0 + static_cast<uint32_t>(r) * detail::kPhiloxW0));
    k.k1[r] = _mm512_set1_epi64(static_cast<uint32_t>(key1 + static_cast<uint32_t>(r) * detail::kPhiloxW1));
  }
}

// Ten Philox rounds on V vectors of 8 blocks. Each 32-bit word sits in the low half of a 64-bit
// lane, so one vpmuludq gives the whole 64-bit product: lo = p, and hi = p with its halves
// swapped (vpshufd, which runs on the port the multiplies do not need). Upper halves carry
// garbage, but vpmuludq reads only low halves and the xors never move upper bits down, so the
// low halves are exactly Philox's words. V independent vectors hide the multiply latency.
template <int V>
DS_AVX512 void philox_rounds(__m512i* a, __m512i* b, __m512i* c, __m512i* d, const PhiloxKeys& k) {
  const __m512i M0 = _mm512_set1_epi64(detail::kPhiloxM0), M1 = _mm512_set1_epi64(detail::kPhiloxM1);
  for (int r = 0; r < 10; ++r) {
    for (int v = 0; v < V; ++v) {
      const __m512i p0 = _mm512_mul_epu32(a[v], M0);
      const __m512i p1 = _mm512_mul_epu32(c[v], M1);
      a[v] = _mm512_ternarylogic_epi64(_mm512_shuffle_epi32(p1, _MM_PERM_CDAB), b[v], k.k0[r], 0x96);
      c[v] = _mm512_ternarylogic_epi64(_mm512_shuffle_epi32(p0, _MM_PERM_CDAB), d[v], k.k1[r], 0x96);
      b[v] = p1;
      d[v] = p0;
    }
  }
}

// detail::log_pos(u) for u = k·2^-24 on 16 lanes, from the bits of float(k) (k >= 1): u's bits
// are those less 24 in the exponent, so the exponent bias absorbs the scaling.
DS_AVX512 __m512 log_k24(__m512i k) {
  const __m512i bits = _mm512_castps_si512(_mm512_cvtepi32_ps(k));
  const __m512i mant = _mm512_and_si512(bits, _mm512_set1_epi32(0x007FFFFF));
  const __mmask16 small = _mm512_cmplt_epi32_mask(mant, _mm512_set1_epi32(0x003504F3));
  __m512i e = _mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(126 + 24));
  e = _mm512_mask_sub_epi32(e, small, e, _mm512_set1_epi32(1));
  const __m512 m = _mm512_castsi512_ps(_mm512_or_si512(mant, _mm512_set1_epi32(0x3F000000)));
  // m·2 where the mantissa is small (exact, so m + m is the same value), then t = m' - 1.
  const __m512 t = _mm512_sub_ps(_mm512_mask_add_ps(m, small, m, m), _mm512_set1_ps(1.0f));
  const __m512 z = _mm512_mul_ps(t, t);
  __m512 y = _mm512_set1_ps(kLogPoly[0]);
  for (int i = 1; i < 9; ++i) y = _mm512_fmadd_ps(y, t, _mm512_set1_ps(kLogPoly[i]));
  y = _mm512_mul_ps(_mm512_mul_ps(y, t), z);
  const __m512 fe = _mm512_cvtepi32_ps(e);
  y = _mm512_fmadd_ps(_mm512_set1_ps(-2.12194440e-4f), fe, y);
  y = _mm512_fmadd_ps(_mm512_set1_ps(-0.5f), z, y);
  return _mm512_fmadd_ps(_mm512_set1_ps(0.693359375f), fe, _mm512_add_ps(t, y));
}

// detail::box_muller on 16 lanes: radius words a, angle words b -> zc = ρ·cos, zs = ρ·sin.
DS_AVX512 void box_muller(__m512i a, __m512i b, __m512& zc, __m512& zs) {
  const __m512i k1 = _mm512_add_epi32(_mm512_srli_epi32(a, 8), _mm512_set1_epi32(1));
  const __m512 r = _mm512_sqrt_ps(_mm512_mul_ps(_mm512_set1_ps(-2.0f), log_k24(k1)));
  // detail::sincos_2pi_k with k = b >> 8, reduced straight from b: q = round(k / 2^22) is
  // (b + 2^29) >> 30 (mod 4, which is all the rotation needs: q = 4 acts as 0), and
  // f·2^24 = k - q·2^22 is bits 8..29 of b read as a signed 22-bit number.
  const __m512i T = _mm512_add_epi32(b, _mm512_set1_epi32(1 << 29));
  const __m512i fi = _mm512_srai_epi32(_mm512_slli_epi32(b, 2), 10);
  const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(fi), _mm512_set1_ps(5.9604644775390625e-8f));
  const __m512 f2 = _mm512_mul_ps(f, f);
  __m512 ps = _mm512_set1_ps(kSinPoly[0]);
  for (int i = 1; i < 5; ++i) ps = _mm512_fmadd_ps(ps, f2, _mm512_set1_ps(kSinPoly[i]));
  const __m512 sv = _mm512_mul_ps(ps, f);
  __m512 cv = _mm512_set1_ps(kCosPoly[0]);
  for (int i = 1; i < 6; ++i) cv = _mm512_fmadd_ps(cv, f2, _mm512_set1_ps(kCosPoly[i]));
  // Rotate by q quarter turns: swap on odd q (bit 30 of T); s flips sign when q's bit 1 is set
  // (bit 31 of T), c when (q + 1)'s is (bit 31 of T + 2^30). ternlog 0x78: A ^ (B & C).
  const __mmask16 odd = _mm512_test_epi32_mask(T, _mm512_set1_epi32(1 << 30));
  const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  const __m512i s = _mm512_ternarylogic_epi32(
      _mm512_castps_si512(_mm512_mask_blend_ps(odd, sv, cv)), T, sign, 0x78);
  const __m512i c = _mm512_ternarylogic_epi32(_mm512_castps_si512(_mm512_mask_blend_ps(odd, cv, sv)),
                                              _mm512_add_epi32(T, _mm512_set1_epi32(1 << 30)), sign, 0x78);
  zc = _mm512_mul_ps(r, _mm512_castsi512_ps(c));
  zs = _mm512_mul_ps(r, _mm512_castsi512_ps(s));
}

// The 32 normals of 8 Philox blocks (words a..d, one block per 64-bit lane) in element order:
// lo = elements 0..15 (blocks 0..3), hi = elements 16..31 (blocks 4..7). Words (0,1) and (2,3)
// of a block are Box–Muller pairs, so the low words of a and c give the radii, of b and d the
// angles, and block j's elements are (zc[j], zs[j], zc[8+j], zs[8+j]).
DS_AVX512 void normals32(__m512i a, __m512i b, __m512i c, __m512i d, __m512& lo, __m512& hi) {
  const __m512i low_words = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  __m512 zc, zs;
  box_muller(_mm512_permutex2var_epi32(a, low_words, c), _mm512_permutex2var_epi32(b, low_words, d),
             zc, zs);
  lo = _mm512_permutex2var_ps(zc, _mm512_set_epi32(27, 11, 19, 3, 26, 10, 18, 2, 25, 9, 17, 1, 24, 8, 16, 0), zs);
  hi = _mm512_permutex2var_ps(zc, _mm512_set_epi32(31, 15, 23, 7, 30, 14, 22, 6, 29, 13, 21, 5, 28, 12, 20, 4), zs);
}

}  // namespace avx512
}  // namespace cpu
}  // namespace kernels
}  // namespace ds
