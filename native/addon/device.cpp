#include "device.h"

#include <torch/cuda.h>

#include <regex>

#include "errors.h"

namespace ds {

c10::Device parseDevice(const std::string& text) {
  static const std::regex pattern(R"(^(cpu|cuda)(?::(\d{1,3}))?$)");
  std::smatch m;
  if (!std::regex_match(text, m, pattern) || (m[1] == "cpu" && m[2].matched))
    throw Error(code::kDevice, "invalid device '" + text + "': use 'cpu', 'cuda' or 'cuda:N'");
  if (m[1] == "cpu") return c10::Device(c10::kCPU);
  int index = m[2].matched ? std::stoi(m[2].str()) : 0;
  if (!torch::cuda::is_available())
    throw Error(code::kDevice,
                "device '" + text +
                    "' requested but no CUDA device is available (this libtorch has no CUDA, or no "
                    "GPU/driver is present); use device 'cpu', or build against a CUDA libtorch "
                    "with Torch_DIR");
  int count = static_cast<int>(torch::cuda::device_count());
  if (index >= count)
    throw Error(code::kDevice, "device '" + text + "' requested but this machine has " +
                                   std::to_string(count) + " CUDA device(s)");
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

c10::Device deviceOption(const Napi::Value& options) {
  if (options.IsUndefined() || options.IsNull()) return c10::Device(c10::kCPU);
  if (!options.IsObject()) throw Error(code::kArgument, "options must be an object");
  Napi::Value d = options.As<Napi::Object>().Get("device");
  if (d.IsUndefined() || d.IsNull()) return c10::Device(c10::kCPU);
  if (!d.IsString()) throw Error(code::kDevice, "options.device must be a string such as 'cpu' or 'cuda:0'");
  return parseDevice(d.As<Napi::String>().Utf8Value());
}

}  // namespace ds
