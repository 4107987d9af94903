// ds_paths.h — host/device shared per-sample coefficients of the noise paths and the samplers.
//
// All coefficients are computed in double from float inputs with + - * / sqrt only (correctly
// rounded on CPU and GPU), then rounded to float, so CPU and CUDA use identical coefficients.
#pragma once

#include "ds_math.h"

namespace ds {
namespace kernels {
namespace detail {

// a(σ) of the path x = a(σ)·x0 + σ·ε. path 0: rectified flow, a = 1 - σ; path 1: VP,
// a = sqrt(1 - σ²). σ must be in [0, 1].
DS_HD double path_alpha(int path, double sigma) {
  if (path == 0) return dsub(1.0, sigma);
  const double v = dsub(1.0, dmul(sigma, sigma));
  return dsqrt(v > 0.0 ? v : 0.0);
}

DS_HD bool sigma_ok(float s) { return s >= 0.0f && s <= 1.0f; }  // false for NaN

struct RenoiseCoef {
  float scale;  // a_t / a_f
  float std;    // sqrt(max(0, σ_t² - (a_t/a_f)²·σ_f²))
  bool valid;
};

// Renoise from σ_f to σ_t >= σ_f (both in [0,1]). a_f == 0 (σ_f = 1, hence σ_t = 1): identity.
DS_HD RenoiseCoef renoise_coef(int path, float sigma_from, float sigma_to) {
  RenoiseCoef r{1.0f, 0.0f, true};
  if (!(sigma_ok(sigma_from) && sigma_ok(sigma_to) && sigma_to >= sigma_from)) {
    r.valid = false;
    return r;
  }
  const double sf = sigma_from, st = sigma_to;
  const double af = path_alpha(path, sf), at = path_alpha(path, st);
  if (af == 0.0) return r;  // σ_f = σ_t = 1: out = x
  const double ratio = ddiv(at, af);
  const double rs = dmul(ratio, sf);
  const double var = dsub(dmul(st, st), dmul(rs, rs));
  r.scale = static_cast<float>(ratio);
  r.std = static_cast<float>(dsqrt(var > 0.0 ? var : 0.0));
  return r;
}

struct DdimCoef {
  float c_x0;   // a_to
  float c_eps;  // sqrt(max(0, σ_to² - s²))
  float s;      // injected noise std
  bool valid;
};

// DDIM-η generalised to x = a·x0 + σ·ε:
//   s = η·σ_t·sqrt(max(0, 1 - (a_f·σ_t / (a_t·σ_f))²)), out = a_t·x0 + sqrt(max(0,σ_t²-s²))·ε̂ + s·z
// s = 0 whenever η = 0, σ_f = 0, σ_t = 0 or a_t = 0. σ_f, σ_t must be in [0,1] (any order).
DS_HD DdimCoef ddim_coef(int path, float sigma_from, float sigma_to, float eta) {
  DdimCoef c{0.0f, 0.0f, 0.0f, true};
  if (!(sigma_ok(sigma_from) && sigma_ok(sigma_to))) {
    c.valid = false;
    return c;
  }
  const double sf = sigma_from, st = sigma_to, e = eta;
  const double af = path_alpha(path, sf), at = path_alpha(path, st);
  double s = 0.0;
  if (e != 0.0 && sf != 0.0 && st != 0.0 && at != 0.0) {
    const double q = ddiv(dmul(af, st), dmul(at, sf));
    const double v = dsub(1.0, dmul(q, q));
    s = dmul(dmul(e, st), dsqrt(v > 0.0 ? v : 0.0));
  }
  const double ve = dsub(dmul(st, st), dmul(s, s));
  c.c_x0 = static_cast<float>(at);
  c.c_eps = static_cast<float>(dsqrt(ve > 0.0 ? ve : 0.0));
  c.s = static_cast<float>(s);
  return c;
}

}  // namespace detail
}  // namespace kernels
}  // namespace ds
