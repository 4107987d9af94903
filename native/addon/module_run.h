// How a stream job runs a module method: under InferenceMode, the call's thread cap and precision,
// and, given chunkRows, with its rows cut into chunks run side by side on one thread each.
#pragma once
#include <torch/script.h>

#include <memory>
#include <string>
#include <vector>

#include "call_options.h"

namespace ds {

c10::IValue runMethod(const std::shared_ptr<torch::jit::Module>& module, const std::string& name,
                      std::vector<c10::IValue> stack, const CallOptions& o);

}  // namespace ds
