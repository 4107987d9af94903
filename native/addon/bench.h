#pragma once
#include <napi.h>

namespace ds {
Napi::Value benchKernels(const Napi::CallbackInfo& info);
}
