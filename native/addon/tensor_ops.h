#pragma once
#include <napi.h>

namespace ds {
void registerTensorOps(Napi::Env env, Napi::Object exports);
}
