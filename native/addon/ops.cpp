#include "ops.h"

namespace ds {
// Filled in with the kernel bindings.
void registerOps(Napi::Env, Napi::Object) {}
}  // namespace ds
