// ds_math.h — host/device shared arithmetic for ds::kernels.
//
// Everything here is compiled identically for the CPU (g++) and the GPU (nvcc), so that the CPU
// and CUDA kernels produce the same numbers from the same seed:
//   * Philox4x32-10 (Salmon et al., SC'11; identical to Random123's philox4x32 with 10 rounds),
//   * the uint32 -> float uniform maps (exact, so uniforms are bitwise identical everywhere),
//   * Box–Muller with our own float log and sin/cos-of-2πt built from + - * sqrt and FMA only,
//   * a double exp for x <= 0 built from + - * only (used by resampling),
//   * element-wise combinations.
// Only IEEE basic operations and explicit FMAs (each correctly rounded on both sides) are used;
// on the device they are written with the _rn intrinsics so nvcc never contracts a*b+c by
// itself. On the host, the .cpp files switch contraction off
// (`#pragma GCC optimize("fp-contract=off")`, and the build should pass -ffp-contract=off too).
// Do not compile with -ffast-math / --use_fast_math.
// Under those conditions the normals, uniforms and every element-wise op give bitwise-identical
// float results on CPU and CUDA.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define DS_HD __host__ __device__ __forceinline__
#else
#define DS_HD inline
#endif

namespace ds {
namespace kernels {
namespace detail {

// ---------------------------------------------------------------------------------------------
// Basic IEEE ops that nvcc must not fuse.
DS_HD float fmul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
DS_HD float fadd(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
DS_HD float fsub(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
DS_HD float fdiv(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
DS_HD double dmul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
DS_HD double dadd(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
DS_HD double dsub(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}
DS_HD double ddiv(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}
DS_HD double dsqrt(double a) {
#if defined(__CUDA_ARCH__)
  return __dsqrt_rn(a);
#else
  return __builtin_sqrt(a);
#endif
}
DS_HD float fsqrt(float a) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(a);
#else
  return __builtin_sqrtf(a);
#endif
}

// a*b + c with one rounding: the FMA instruction on the device and on x86-64 with FMA, glibc's
// exact fmaf elsewhere — the same value everywhere.
DS_HD float ffma(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return __builtin_fmaf(a, b, c);
#endif
}

DS_HD uint32_t f2u(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
DS_HD float u2f(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}
DS_HD double u64_to_double_bits(uint64_t u) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(u));
#else
  double d;
  std::memcpy(&d, &u, 8);
  return d;
#endif
}

// ---------------------------------------------------------------------------------------------
// Philox4x32-10.
constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1

struct U32x4 {
  uint32_t v0, v1, v2, v3;
};

DS_HD void mulhilo32(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
#if defined(__CUDA_ARCH__)
  hi = __umulhi(a, b);
  lo = a * b;
#else
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
#endif
}

// Philox4x32 with 10 rounds: counter c (4 words), key (k0, k1).
DS_HD U32x4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                          uint32_t k1) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo32(kPhiloxM0, c0, hi0, lo0);
    mulhilo32(kPhiloxM1, c2, hi1, lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0;
    const uint32_t n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
  }
  return U32x4{c0, c1, c2, c3};
}

// Domain tags stored in counter word 1 for the selection streams. Noise streams put the high 32
// bits of the Philox block index there, which is 0 for every dim < 2^34 (a precondition), so the
// streams can never collide.
constexpr uint32_t kTagTournament = 0xD5000001u;
constexpr uint32_t kTagMultinomial = 0xD5000002u;
constexpr uint32_t kTagSystematic = 0xD5000003u;

// Noise stream: key = seed, counter = {block_lo, block_hi, uint32(sample_id), uint32(step)}.
DS_HD U32x4 noise_block(uint64_t seed, uint64_t sample_id, uint64_t step, uint64_t block) {
  return philox4x32_10(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                       static_cast<uint32_t>(sample_id), static_cast<uint32_t>(step),
                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// ---------------------------------------------------------------------------------------------
// Uniforms (exact: every value is k * 2^-24, representable in float).
// (0, 1]: ((x >> 8) + 1) * 2^-24 — never 0, so log() is finite.
DS_HD float uniform_open0(uint32_t x) {
  return static_cast<float>(static_cast<int32_t>((x >> 8) + 1u)) * 5.9604644775390625e-8f;
}
// [0, 1): (x >> 8) * 2^-24.
DS_HD float uniform_closed0(uint32_t x) {
  return static_cast<float>(static_cast<int32_t>(x >> 8)) * 5.9604644775390625e-8f;
}
// Double in (0, 1) from two words: (2*b + 1) * 2^-53 with b the top 52 bits of (hi:lo). Exact.
DS_HD double uniform_double_open(uint32_t hi, uint32_t lo) {
  const uint64_t b = ((static_cast<uint64_t>(hi) << 32) | lo) >> 12;
  return static_cast<double>(2u * b + 1u) * 1.1102230246251565404e-16;  // 2^-53
}
// Integer in [0, n) for n <= 2^32 by multiply-shift (bias < n / 2^32).
DS_HD uint64_t uniform_index(uint32_t x, uint64_t n) {
  return (static_cast<uint64_t>(x) * n) >> 32;
}

// ---------------------------------------------------------------------------------------------
// Natural log for x in (0, 1] (any positive normal x really): Cephes logf's polynomial, evaluated
// with FMAs (~1 ulp).
// (noise_poly.h repeats this polynomial's and sincos_2pi_k's coefficients for the SIMD code.)
DS_HD float log_pos(float x) {
  const uint32_t bits = f2u(x);
  const int32_t small_m = (bits & 0x007FFFFFu) < 0x003504F3u;  // mantissa < sqrt(1/2) (as m)
  const int32_t e = static_cast<int32_t>(bits >> 23) - 126 - small_m;  // x = m' * 2^e
  const float m = u2f((bits & 0x007FFFFFu) | 0x3F000000u);  // m in [0.5, 1)
  // m' = 2m if m < sqrt(1/2), else m; t = m' - 1 in [-0.293, 0.414] (exact)
  const float t = fsub(fmul(m, static_cast<float>(1 + small_m)), 1.0f);
  const float z = fmul(t, t);
  float y = 7.0376836292e-2f;
  y = ffma(y, t, -1.1514610310e-1f);
  y = ffma(y, t, 1.1676998740e-1f);
  y = ffma(y, t, -1.2420140846e-1f);
  y = ffma(y, t, 1.4249322787e-1f);
  y = ffma(y, t, -1.6668057665e-1f);
  y = ffma(y, t, 2.0000714765e-1f);
  y = ffma(y, t, -2.4999993993e-1f);
  y = ffma(y, t, 3.3333331174e-1f);
  y = fmul(fmul(y, t), z);
  const float fe = static_cast<float>(e);
  y = ffma(-2.12194440e-4f, fe, y);
  y = ffma(-0.5f, z, y);
  return ffma(0.693359375f, fe, fadd(t, y));
}

// sin(2πt), cos(2πt) for t = k * 2^-24, k in [0, 2^24). The reduction is done in integers, so
// it is exact: q = round(4t), f = t - q/4 in [-1/8, 1/8], angle = q·π/2 + 2πf.
DS_HD void sincos_2pi_k(uint32_t k, float& s, float& c) {
  const int32_t q = static_cast<int32_t>((k + (1u << 21)) >> 22);  // 0..4
  const int32_t fi = static_cast<int32_t>(k) - (q << 22);          // in [-2^21, 2^21]
  const float f = fmul(static_cast<float>(fi), 5.9604644775390625e-8f);  // exact
  const float f2 = fmul(f, f);
  // Taylor series in f, coefficients (2π)^n/n! (truncation error < 2e-9 for |f| <= 1/8).
  float ps = 42.058693944897634f;                  // (2π)^9/9!
  ps = ffma(ps, f2, -76.70585975306136f);          // (2π)^7/7!
  ps = ffma(ps, f2, 81.60524927607504f);           // (2π)^5/5!
  ps = ffma(ps, f2, -41.341702240399755f);         // (2π)^3/3!
  ps = ffma(ps, f2, 6.283185307179586f);           // 2π
  const float sv = fmul(ps, f);
  float pc = -26.426256783374388f;                 // -(2π)^10/10!
  pc = ffma(pc, f2, 60.24464137187664f);           // (2π)^8/8!
  pc = ffma(pc, f2, -85.45681720669371f);          // (2π)^6/6!
  pc = ffma(pc, f2, 64.93939402266828f);           // (2π)^4/4!
  pc = ffma(pc, f2, -19.739208802178716f);         // (2π)^2/2!
  const float cv = ffma(pc, f2, 1.0f);
  // Rotate by q quarter turns, branch-free: swap on odd q, sign of s flips for q in {2,3},
  // sign of c flips for q in {1,2}.
  const uint32_t swap = 0u - static_cast<uint32_t>(q & 1);
  const uint32_t sb = f2u(sv), cb = f2u(cv);
  const uint32_t s_bits = ((sb & ~swap) | (cb & swap)) ^ (static_cast<uint32_t>(q & 2) << 30);
  const uint32_t c_bits = ((cb & ~swap) | (sb & swap)) ^ (static_cast<uint32_t>((q + 1) & 2) << 30);
  s = u2f(s_bits);
  c = u2f(c_bits);
}

// Box–Muller: (a, b) -> two standard normals. ρ = sqrt(-2 ln u1), u1 in (0,1] from a;
// angle 2π·u2, u2 = (b >> 8)·2^-24 in [0,1). z0 = ρ cos, z1 = ρ sin. |z| <= sqrt(2 ln 2^24) ≈ 5.77.
DS_HD void box_muller(uint32_t a, uint32_t b, float& z0, float& z1) {
  const float u1 = uniform_open0(a);
  const float r = fsqrt(fmul(-2.0f, log_pos(u1)));  // IEEE sqrt: vsqrtps / __fsqrt_rn
  float s, c;
  sincos_2pi_k(b >> 8, s, c);
  z0 = fmul(r, c);
  z1 = fmul(r, s);
}

// The four normals of one Philox block: lanes (0,1) -> pair, lanes (2,3) -> pair.
DS_HD void normal4(const U32x4& r, float& z0, float& z1, float& z2, float& z3) {
  box_muller(r.v0, r.v1, z0, z1);
  box_muller(r.v2, r.v3, z2, z3);
}

// ---------------------------------------------------------------------------------------------
// exp(x) in double for x <= 0 (NaN/positive not expected), ~1 ulp, + - * and exact scaling only.
DS_HD double exp_nonpos(double x) {
  if (!(x > -745.2)) return 0.0;  // also -inf
  const double kInvLn2 = 1.44269504088896338700e+00;
  const double kLn2Hi = 6.93147180369123816490e-01;  // 32 trailing zero bits: n*hi exact
  const double kLn2Lo = 1.90821492927058770002e-10;
  double t = dadd(dmul(x, kInvLn2), 0.5);
#if defined(__CUDA_ARCH__)
  const double nf = ::floor(t);
#else
  const double nf = __builtin_floor(t);
#endif
  const int n = static_cast<int>(nf);
  const double r = dsub(dsub(x, dmul(nf, kLn2Hi)), dmul(nf, kLn2Lo));  // |r| <= ~0.347
  // Taylor to r^13 (truncation < 5e-18).
  double p = 1.0 / 6227020800.0;             // 1/13!
  p = dadd(dmul(p, r), 1.0 / 479001600.0);   // 1/12!
  p = dadd(dmul(p, r), 1.0 / 39916800.0);    // 1/11!
  p = dadd(dmul(p, r), 1.0 / 3628800.0);     // 1/10!
  p = dadd(dmul(p, r), 1.0 / 362880.0);      // 1/9!
  p = dadd(dmul(p, r), 1.0 / 40320.0);       // 1/8!
  p = dadd(dmul(p, r), 1.0 / 5040.0);        // 1/7!
  p = dadd(dmul(p, r), 1.0 / 720.0);         // 1/6!
  p = dadd(dmul(p, r), 1.0 / 120.0);         // 1/5!
  p = dadd(dmul(p, r), 1.0 / 24.0);          // 1/4!
  p = dadd(dmul(p, r), 1.0 / 6.0);
  p = dadd(dmul(p, r), 0.5);
  p = dadd(dmul(p, r), 1.0);
  p = dadd(dmul(p, r), 1.0);
  // scale by 2^n, n in [-1075, 1]: two exact power-of-two factors (second may round subnormal).
  int n1 = n < -1000 ? -1000 : n;
  int n2 = n - n1;  // in [-75, 0]
  const double s1 = u64_to_double_bits(static_cast<uint64_t>(1023 + n1) << 52);
  const double s2 = u64_to_double_bits(static_cast<uint64_t>(1023 + n2) << 52);
  return dmul(dmul(p, s1), s2);
}

// ---------------------------------------------------------------------------------------------
// Order-preserving key for "descending, NaN treated as -inf, -0 == +0": larger float -> larger
// key. Used by top-k and tournament so CPU and CUDA rank identically.
DS_HD uint32_t float_rank_key(float v) {
  uint32_t b = f2u(v);
  b = (b & 0x7FFFFFFFu) > 0x7F800000u ? 0xFF800000u : b;  // NaN -> -inf
  b = b == 0x80000000u ? 0u : b;                          // -0 -> +0
  // Negative: ~b; positive: b | sign. Branch-free: the sign decides on random data half the time.
  return b ^ (static_cast<uint32_t>(static_cast<int32_t>(b) >> 31) | 0x80000000u);
}

}  // namespace detail
}  // namespace kernels
}  // namespace ds
