// Device strings ("cpu", "cuda", "cuda:N") to c10::Device, validated against this machine.
#pragma once
#include <c10/core/Device.h>
#include <napi.h>

#include <string>

namespace ds {

c10::Device parseDevice(const std::string& text);
// Reads options.device (undefined means cpu).
c10::Device deviceOption(const Napi::Value& options);

}  // namespace ds
