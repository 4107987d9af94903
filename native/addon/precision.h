// Reduced-precision forwards on CPU: libtorch's CPU autocast (bf16) scoped around one call, the
// CPU features that make it pay, and the cast of its outputs back to float32 for JS.
#pragma once
#include <ATen/core/ivalue.h>
#include <napi.h>

#include <string>

namespace ds {

enum class Precision { kFp32, kBf16 };

// Reads a precision option's value ('fp32' or 'bf16'; undefined means fp32).
Precision precisionOption(const Napi::Value& value);
const char* precisionName(Precision p);

// The CPU features bf16 autocast runs natively on (false on other architectures).
struct CpuFeatures {
  bool avx512 = false;
  bool avx512bf16 = false;
  bool amxbf16 = false;
};
CpuFeatures cpuFeatures();

// Turns CPU autocast on for this thread while alive and restores the previous state after.
class AutocastScope {
 public:
  explicit AutocastScope(Precision p);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  bool wasEnabled_ = false;
  at::ScalarType wasDtype_ = at::kBFloat16;
};

// Reduced-precision floating tensors in `v` (and in its tuples and lists) as float32.
c10::IValue toFloat32(const c10::IValue& v);

}  // namespace ds
