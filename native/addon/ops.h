// Bindings of the kernels in native/kernels (one async function per op).
#pragma once
#include <napi.h>

namespace ds {
void registerOps(Napi::Env env, Napi::Object exports);
}
