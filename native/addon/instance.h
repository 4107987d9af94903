// Per-environment state of the addon (worker threads and constructors), so the addon
// also works in worker_threads where each environment loads it afresh.
#pragma once
#include <napi.h>

#include <memory>
#include <mutex>
#include <vector>

namespace ds {

class Stream;

struct Instance {
  Napi::FunctionReference errorClass;  // DiffusionSearchError, registered from JS by init()
  Napi::FunctionReference tensorClass;
  Napi::FunctionReference moduleClass;
  Napi::FunctionReference streamClass;
  std::shared_ptr<Stream> defaultStream;
  std::vector<std::weak_ptr<Stream>> streams;  // every stream, closed at environment teardown

  static Instance* get(Napi::Env env) { return env.GetInstanceData<Instance>(); }
};

}  // namespace ds
