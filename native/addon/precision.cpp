#include "precision.h"

#include <ATen/autocast_mode.h>

#include "errors.h"

namespace ds {

Precision precisionOption(const Napi::Value& v) {
  if (v.IsUndefined()) return Precision::kFp32;
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  if (s == "fp32") return Precision::kFp32;
  if (s == "bf16") return Precision::kBf16;
  throw Error(code::kArgument, "precision must be 'fp32' or 'bf16'");
}

const char* precisionName(Precision p) { return p == Precision::kBf16 ? "bf16" : "fp32"; }

CpuFeatures cpuFeatures() {
  CpuFeatures f;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  f.avx512bf16 = __builtin_cpu_supports("avx512bf16");
  f.amxbf16 = __builtin_cpu_supports("amx-bf16");
#endif
  return f;
}

AutocastScope::AutocastScope(Precision p) {
  if (p != Precision::kBf16) return;
  active_ = true;
  wasEnabled_ = at::autocast::is_cpu_enabled();
  wasDtype_ = at::autocast::get_autocast_cpu_dtype();
  at::autocast::set_cpu_enabled(true);
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // As torch.autocast's exit: the outermost scope drops the cache of cast weights.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_cpu_enabled(wasEnabled_);
  at::autocast::set_autocast_cpu_dtype(wasDtype_);
}

c10::IValue toFloat32(const c10::IValue& v) {
  if (v.isTensor()) {
    const at::Tensor& t = v.toTensor();
    bool reduced = t.scalar_type() == at::kBFloat16 || t.scalar_type() == at::kHalf;
    return reduced ? c10::IValue(t.to(at::kFloat)) : v;
  }
  if (v.isTuple()) {
    std::vector<c10::IValue> items;
    for (const auto& e : v.toTupleRef().elements()) items.push_back(toFloat32(e));
    return c10::ivalue::Tuple::create(std::move(items));
  }
  if (v.isList()) {
    auto list = v.toList();
    c10::impl::GenericList out(list.elementType());
    for (const c10::IValue& e : list) out.push_back(toFloat32(e));
    return out;
  }
  return v;
}

}  // namespace ds
