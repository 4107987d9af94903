// TorchScript modules: loaded with torch::jit::load (reading the model card stored in the
// archive as extra file model.json), called method by method on a stream.
#pragma once
#include <napi.h>
#include <torch/script.h>

#include <memory>
#include <string>

#include "call_options.h"

namespace ds {

class ModuleWrap : public Napi::ObjectWrap<ModuleWrap> {
 public:
  struct Loaded {
    std::shared_ptr<torch::jit::Module> module;
    std::string path;
    std::string card;  // empty when the archive has no model.json
    bool hasCard = false;
    c10::Device device{c10::kCPU};
  };
  static Napi::Function define(Napi::Env env);
  // loadModule(path, { device }, stream?) -> Promise<Module>
  static Napi::Value load(const Napi::CallbackInfo& info);
  explicit ModuleWrap(const Napi::CallbackInfo& info);

 private:
  const Loaded& get() const;
  const c10::FunctionSchema& target(const Napi::CallbackInfo& info, size_t count, std::string& name) const;
  CallOptions options(const Napi::Value& v) const;
  Napi::Value call(const Napi::CallbackInfo& info);
  // callJoined(method, pieces [[inputs[], start, end], ...], stream?, options?) -> Promise<outputs[]>
  Napi::Value callJoined(const Napi::CallbackInfo& info);
  Napi::Value card(const Napi::CallbackInfo& info);
  Napi::Value methods(const Napi::CallbackInfo& info);
  Napi::Value schema(const Napi::CallbackInfo& info);
  Napi::Value optimize(const Napi::CallbackInfo& info);
  Napi::Value device(const Napi::CallbackInfo& info);
  Napi::Value path(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);
  std::unique_ptr<Loaded> loaded_;
};

}  // namespace ds
