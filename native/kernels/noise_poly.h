// noise_poly.h — the coefficients of ds_math.h's log_pos and sincos_2pi_k polynomials, highest
// degree first, as arrays for the SIMD Box–Muller (avx2_noise.h, avx512_noise.h). They must
// equal ds_math.h's literals (which the CUDA kernels use); the kernel tests compare every SIMD
// path with the scalar formula bit for bit.
#pragma once

namespace ds {
namespace kernels {
namespace cpu {

// log_pos: y = Σ c·t^k by Horner with FMAs, then y·t·t².
constexpr float kLogPoly[9] = {7.0376836292e-2f,  -1.1514610310e-1f, 1.1676998740e-1f,
                               -1.2420140846e-1f, 1.4249322787e-1f,  -1.6668057665e-1f,
                               2.0000714765e-1f,  -2.4999993993e-1f, 3.3333331174e-1f};
// sin(2πf) = f·P(f²), cos(2πf) = Q(f²): Taylor coefficients (2π)^n/n!.
constexpr float kSinPoly[5] = {42.058693944897634f, -76.70585975306136f, 81.60524927607504f,
                               -41.341702240399755f, 6.283185307179586f};
constexpr float kCosPoly[6] = {-26.426256783374388f, 60.24464137187664f, -85.45681720669371f,
                               64.93939402266828f,   -19.739208802178716f, 1.0f};

}  // namespace cpu
}  // namespace kernels
}  // namespace ds
